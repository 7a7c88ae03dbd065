#!/bin/sh
# The build: every binary runs, shows its usage on --help (exit 0) and
# refuses what it does not know with its usage and exit 2.
. "$(dirname "$0")/lib.sh"

check_match "orch version prints a version number" '^orch version [0-9]+\.[0-9]+\.[0-9]+$' "$("$B/orch" version)"
check_match "version --short: the number alone" '^[0-9]+\.[0-9]+\.[0-9]+$' "$("$B/orch" version --short)"
check_match "version --format json" '^\{"version":"[0-9.]+"\}$' "$("$B/orch" version --format json)"
"$B/orch" version --format xml >/dev/null 2>&1
check_eq "version --format xml: usage error" 2 "$?"
check_eq "orch --version and -v print the same" "$("$B/orch" version)
$("$B/orch" version)" "$("$B/orch" --version)
$("$B/orch" -v)"
for cmd in orch orch-runtime netd; do
	out=$("$B/$cmd" --help 2>&1)
	check_eq "$cmd --help exits 0" 0 $?
	check_match "$cmd --help shows its usage" '^[Uu]sage: ' "$out"
done
check_match "orch --help lists the commands" 'Commands:' "$("$B/orch" --help)"
out=$("$B/orch" nosuchcmd 2>&1)
check_eq "orch with an unknown command exits 2" 2 $?
check_match "and names it" 'unknown command "nosuchcmd"' "$out"
for cmd in orch orch-runtime netd; do
	out=$("$B/$cmd" --no-such-option 2>&1)
	check_eq "$cmd with an unknown option exits 2" 2 $?
done
"$B/orch-supervisor" >/dev/null 2>&1
check_eq "orch-supervisor without a project exits 2" 2 $?
finish
