#!/usr/bin/env bash
#
# deps.sh: install the Debian 12 packages that building, testing and the
# demo need, and nothing else.  Idempotent: when everything is installed it
# prints nothing and returns at once (one dpkg-query, no network).  When
# something is missing it runs `apt-get update` once, then installs only
# the missing packages, non-interactively (CI has no standard input).
#
# usage: scripts/deps.sh [--list | --check]
#   --list    print the package list and exit
#   --check   print the missing packages; exit 1 if any (installs nothing)
#
# Add a package here, in SF_DEPS, when a build step, a test or a script
# starts using a program or library that is not in it.

set -u
set -o pipefail

SF_DEPS=(
	# build
	cmake make gcc libc6-dev binutils pkg-config
	clang libclang-rt-14-dev # clang -Werror build; clang's sanitizer runtimes
	libconfig-dev            # the configuration parser (libsockfilter.so)
	libjansson-dev           # soconfigd's JSON
	libevent-dev             # soconfigd's event loop
	# tests
	libcriterion-dev         # unit tests
	valgrind                 # leak checks, callgrind benchmarks
	clang-format             # scripts/test.sh format check (a warning only)
	# end-to-end tests and the demo: real programs on loopback
	curl python3 socat
	nginx-light redis-server redis-tools wrk # event-loop servers and their load tools
	dnsutils                 # dig +tcp against the DNS accept filter
	procps                   # pgrep, ps
	iproute2                 # ss
	bsdextrautils            # hexdump (scripts/demo.sh)
)

usage()
{
	sed -n '/^# usage:/,/^#   --check/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

mode=install
case ${1:-} in
"") ;;
--list) mode=list ;;
--check) mode=check ;;
*) usage ;;
esac

if [ "$mode" = list ]; then
	printf '%s\n' "${SF_DEPS[@]}"
	exit 0
fi

# missing: the packages of SF_DEPS that dpkg does not show as installed.
missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${SF_DEPS[@]}" \
    2>/dev/null)
for p in "${SF_DEPS[@]}"; do
	# "ii " is installed; anything else (absent, removed, half-installed)
	# is missing.
	if ! grep -q "^$p ii" <<<"$status"; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$mode" = check ]; then
	printf 'missing: %s\n' "${missing[*]}"
	exit 1
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo -n)
	else
		printf 'deps.sh: missing %s, and not root (no sudo): install them as root\n' \
		    "${missing[*]}" >&2
		exit 1
	fi
fi

printf 'deps.sh: installing %s\n' "${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)
log=$(mktemp) || exit 1
if ! "${sudo[@]}" apt-get "${apt_opts[@]}" update >"$log" 2>&1 </dev/null; then
	cat "$log" >&2
	rm -f "$log"
	printf 'deps.sh: apt-get update failed\n' >&2
	exit 1
fi
rm -f "$log"
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" \
    install --no-install-recommends "${missing[@]}" </dev/null; then
	printf 'deps.sh: apt-get install failed\n' >&2
	exit 1
fi

# Check again: a package name that apt resolved to something else would
# otherwise be reinstalled on every run.
if ! bash "$0" --check; then
	printf 'deps.sh: still missing after apt-get install\n' >&2
	exit 1
fi
printf 'deps.sh: done\n'
