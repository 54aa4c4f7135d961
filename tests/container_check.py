#!/usr/bin/env python3
"""Offline checks of the Containerfile (no image builder runs here: no container daemon, and base images
come from registries this machine cannot reach). Parsed with the official BuildKit parser (PyPI
`dockerfile`):
- multi-stage: a build stage `AS build`, a distroless runtime stage that copies only /out from it;
- every repository file the build copies or installs exists;
- the image's ENTRYPOINT + CMD are flags the real binary accepts (`check-config` with the packaged file);
- the binary links only what the distroless `cc` runtime has (glibc, libgcc_s): checked with ldd;
- the build context excludes target/ and .git/ (.dockerignore).
Usage: tests/container_check.py [path/to/tripline]
"""
import pathlib
import re
import subprocess
import sys

import dockerfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNTIME_LIBS = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
                "libdl.so.2", "libpthread.so.0", "librt.so.1", "ld-linux-aarch64.so.1"}


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/debug/tripline")
    problems = []
    cmds = dockerfile.parse_file(str(ROOT / "Containerfile"))
    froms = [c for c in cmds if c.cmd == "FROM"]
    if len(froms) < 2:
        problems.append("Containerfile is not multi-stage")
    elif [v.lower() for v in froms[0].value[1:]] != ["as", "build"]:
        problems.append("the first stage must be `AS build`")
    if froms and "distroless" not in froms[-1].value[0]:
        problems.append(f"runtime stage {froms[-1].value[0]} is not distroless")
    last_from = max(i for i, c in enumerate(cmds) if c.cmd == "FROM")
    runtime = cmds[last_from + 1:]
    copies = [c for c in runtime if c.cmd == "COPY"]
    if not copies or any(c.flags != ("--from=build",) or c.value != ("/out/", "/") for c in copies):
        problems.append("the runtime stage must copy only /out/ from the build stage")
    for c in cmds[:last_from]:
        if c.cmd == "COPY":
            for src in c.value[:-1]:
                if src != "." and not (ROOT / src).exists():
                    problems.append(f"COPY {src}: no such file in the repository")
        if c.cmd == "RUN":
            for src in re.findall(r"install -D -m \d+ (\S+) /out/", c.value[0]):
                if not src.startswith("target/") and not (ROOT / src).exists():
                    problems.append(f"RUN install {src}: no such file in the repository")
    entry = next((c.value for c in runtime if c.cmd == "ENTRYPOINT"), ())
    cmd = next((c.value for c in runtime if c.cmd == "CMD"), ())
    if entry != ("/usr/bin/tripline",):
        problems.append(f"ENTRYPOINT {entry} is not /usr/bin/tripline")
    if not any(c.cmd == "EXPOSE" and "9799" in c.value for c in runtime):
        problems.append("EXPOSE 9799 missing")
    args = [a.replace("/etc/tripline/tripline.yml", str(ROOT / "packaging/tripline.yml")) for a in cmd]
    r = subprocess.run([binary, *args, "check-config", "--offline"], capture_output=True, text=True)
    if r.returncode != 0:
        problems.append(f"CMD {cmd} rejected by tripline: {r.stderr.strip()}")
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = {line.split()[0].rsplit("/", 1)[-1] for line in ldd.splitlines() if line.strip()}
    extra = libs - RUNTIME_LIBS
    if extra:
        problems.append(f"the binary needs {sorted(extra)}, which the distroless cc image lacks")
    ignore = (ROOT / ".dockerignore").read_text().split()
    for want in ("target/", ".git/"):
        if want not in ignore:
            problems.append(f".dockerignore must exclude {want}")
    for p in problems:
        print("PROBLEM:", p)
    print(f"Containerfile: {len(froms)} stages, runtime {froms[-1].value[0] if froms else '?'}, "
          f"binary links {sorted(libs)}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
