# Checks for what the scripts cannot install themselves. Each check stops
# the script with one line that names what is missing and how to get it.
# Sourced by scripts/demo, scripts/test and the *-env scripts.

prereq_fail() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

need_cargo() {
  command -v cargo >/dev/null ||
    prereq_fail "cargo not found; install Rust with rustup (https://rustup.rs), which also reads rust-toolchain.toml"
}

need_curl() {
  command -v curl >/dev/null ||
    prereq_fail "curl not found; install it (Debian/Ubuntu: apt-get install curl)"
}

# Python 3.10 or newer with venv (the MCP Python SDK needs 3.10).
need_python() {
  command -v python3 >/dev/null ||
    prereq_fail "python3 not found; install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    prereq_fail "python3 is $(python3 -c 'import platform; print(platform.python_version())'); the MCP Python SDK needs 3.10 or newer"
  python3 -c 'import venv, ensurepip' 2>/dev/null ||
    prereq_fail "python3 cannot make a venv; install its venv module (Debian/Ubuntu: apt-get install python3-venv)"
}

# Node.js 20 or newer with npm.
need_node() {
  command -v node >/dev/null && command -v npm >/dev/null ||
    prereq_fail "node and npm not found; install Node.js 20 or newer (https://nodejs.org, or your distribution's nodejs and npm)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] ||
    prereq_fail "node is $(node --version); the MCP TypeScript SDK needs Node.js 20 or newer"
}
