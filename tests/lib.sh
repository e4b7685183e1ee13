# tests/lib.sh: helpers shared by the shell tests (sourced).
: "${SPIKEMESH:=$(pwd)/spikemesh}"
: "${SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    d=$1
    shift
    if "$@"; then ok "$d"; else notok "$d"; fi
}
# json_num FILE KEY: the first number after "KEY": in a JSON file
json_num() { grep -o "\"$2\": *[-0-9.eE+]*" "$1" | head -n 1 | sed 's/.*: *//'; }
finish() {
    if [ "$fails" -gt 0 ]; then echo "$fails failed"; exit 1; fi
    exit 0
}
