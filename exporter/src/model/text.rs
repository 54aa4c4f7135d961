//! Shared, immutable strings for what every event of a process repeats (its executable, script, argv and
//! ancestry): the process tree holds one copy and each event shares it, so enriching an event costs a
//! reference count, not an allocation per string.
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// An immutable string shared by reference count. Reads like `&str`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<str>);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string itself (for consumers that keep reference-counted strings, as OTLP does).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Path> for Text {
    fn as_ref(&self) -> &Path {
        Path::new(&*self.0)
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Arc::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Arc::from(s))
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text(Arc::from(s.as_str()))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0.to_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        &*self.0 == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == &*other.0
    }
}

/// A process's argv, shared like [`Text`]. Reads like `&[String]`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Args(Arc<[String]>);

impl Deref for Args {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<Vec<String>> for Args {
    fn from(v: Vec<String>) -> Args {
        Args(Arc::from(v))
    }
}

impl FromIterator<String> for Args {
    fn from_iter<I: IntoIterator<Item = String>>(it: I) -> Args {
        Args(it.into_iter().collect())
    }
}

impl From<&[String]> for Args {
    fn from(v: &[String]) -> Args {
        Args(Arc::from(v))
    }
}

impl From<Args> for Vec<String> {
    fn from(a: Args) -> Vec<String> {
        a.0.to_vec()
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Args {
    fn eq(&self, other: &Vec<S>) -> bool {
        self.0.len() == other.len() && self.0.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Args {
    fn eq(&self, other: &[S; N]) -> bool {
        self.0.len() == N && self.0.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_and_compares_like_a_str() {
        let t = Text::from("/usr/bin/bash");
        assert_eq!(t, "/usr/bin/bash");
        assert_eq!(t, "/usr/bin/bash".to_string());
        assert_eq!(t.rsplit('/').next(), Some("bash"));
        assert_eq!(format!("{t} {t:?}"), "/usr/bin/bash \"/usr/bin/bash\"");
        let shared = t.clone();
        assert!(std::ptr::eq(t.as_str(), shared.as_str()), "a clone shares");
        let a = Args::from(vec!["sh".to_string(), "-c".to_string()]);
        assert_eq!(a, vec!["sh", "-c"]);
        assert_eq!(a.join(" "), "sh -c");
    }
}
