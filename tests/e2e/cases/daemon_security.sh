# shellcheck shell=bash
# daemon_security: the daemon's socket and published configuration have
# the documented permissions; malformed, hostile and oversized requests
# get a JSON error and the daemon keeps serving; 64 clients at once are
# all answered; a change from another user (soconfig run as nobody) is
# refused with "permission denied" (status 4) while reads are open to
# them; and soconfig reports every error clearly with its documented
# status: no daemon 3, bad syntax 2, unknown filter or module 5.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3)

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" out rc mode
	need_daemon
	# nobody must reach the socket: the case directory is private.
	chmod 755 "$E2E_TMP"
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  { name = "datafilt"; module = "datafilt"; attach = "auto";
    sockets = [ "inet:stream:tcp" ]; }
);
CONF
	chmod 644 "$conf"

	# No daemon yet.
	out=$(soconfig -s 2>&1)
	rc=$?
	log "no daemon: status $rc: $out"
	[ "$rc" = 3 ] || fail "soconfig without a daemon: status $rc, expected 3"
	[[ $out == *"no daemon"* ]] || fail "soconfig without a daemon: unclear message: $out"

	start_daemon "$conf"
	mode=$(stat -c '%a %F' "$SF_SOCK")
	[ "$mode" = "666 socket" ] || fail "socket mode: $mode"
	mode=$(stat -c '%a' "$SF_SOCK.cfg")
	[ "$mode" = 644 ] || fail "published configuration mode: $mode"
	mode=$(stat -c '%a' "$(dirname "$SF_SOCK")")
	[ "$mode" = 755 ] || fail "socket directory mode: $mode"

	# Hostile requests, then 64 clients at once.
	python3 - "$SF_SOCK" <<'PY' || fail "the daemon mishandled hostile requests"
import json, socket, sys, threading
path = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    return s, s.makefile("rb")

def ask(f, s, line):
    s.sendall(line)
    r = f.readline()
    return json.loads(r)

bad = [b"garbage\n", b"[1,2,3]\n", b"{}\n", b"{\"cmd\":42}\n",
       b"{\"cmd\":\"explode\"}\n", b"{\"cmd\":\"pfiles\",\"pid\":-1}\n",
       b"{\"cmd\":\"pfiles\",\"pid\":\"x\"}\n", b"{\"cmd\":\"stats\",\"x\":1}\n",
       b"{\"cmd\":\"stats\",\"cmd\":\"stats\"}\n", b"\x00\xff\xfe\x01\n",
       b"{\"cmd\":\"set\",\"filter\":{\"name\":\"a\"}}\n",
       b"{\"cmd\":\"unset\",\"name\":\"\"}\n",
       b"{\"cmd\":\"stats\"" + b" " * 1000 + b"\n",
       b"{\"cmd\":\"pfiles\",\"pid\":999999999999}\n"]
s, f = conn()
for line in bad:
    r = ask(f, s, line)
    if r.get("ok") is not False or "error" not in r or "code" not in r:
        print("FAIL: not an error for", line[:40], r); sys.exit(1)
r = ask(f, s, b"{\"cmd\":\"stats\"}\n")
if r.get("ok") is not True:
    print("FAIL: stats after bad requests", r); sys.exit(1)
# A request larger than 64 KiB: an error, then the connection closes.
s.sendall(b"{\"cmd\":\"" + b"x" * 70000 + b"\"}\n")
r = json.loads(f.readline())
if r.get("ok") is not False or "too long" not in r["error"]:
    print("FAIL: oversized", r); sys.exit(1)
if f.readline() != b"":
    print("FAIL: the connection stayed open after an oversized request"); sys.exit(1)
# Half a request, then gone.
s, f = conn(); s.sendall(b"{\"cmd\":\"st"); s.close()
# 64 clients at once, three requests each.
errs = []
def client(i):
    try:
        s, f = conn()
        for cmd in (b"stats", b"config", b"procs"):
            r = ask(f, s, b"{\"cmd\":\"" + cmd + b"\"}\n")
            if r.get("ok") is not True:
                errs.append(r)
        s.close()
    except Exception as e:
        errs.append(repr(e))
ts = [threading.Thread(target=client, args=(i,)) for i in range(64)]
[t.start() for t in ts]; [t.join() for t in ts]
if errs:
    print("FAIL:", errs[:3]); sys.exit(1)
print("hostile requests refused, 64 clients served")
PY
	soconfig -s >/dev/null || fail "the daemon stopped serving"

	# Another user: reads yes, changes no.
	if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
		out=$(SOCKFILTER_SOCKET=$SF_SOCK setpriv --reuid=nobody \
		    --regid=nogroup --clear-groups "$E2E_SBINDIR/soconfig" -s 2>&1)
		rc=$?
		[ "$rc" = 0 ] || fail "soconfig -s as nobody: status $rc: $out"
		out=$(SOCKFILTER_SOCKET=$SF_SOCK setpriv --reuid=nobody \
		    --regid=nogroup --clear-groups "$E2E_SBINDIR/soconfig" \
		    -F datafilt 2>&1)
		rc=$?
		log "soconfig -F as nobody: status $rc: $out"
		[ "$rc" = 4 ] || fail "a change as nobody: status $rc, expected 4"
		[[ $out == *"permission denied"* ]] ||
		    fail "a change as nobody: unclear message: $out"
		soconfig -l | grep -q '^datafilt' ||
		    fail "nobody's change was applied"
	else
		log "not root: the other-user check is skipped"
	fi

	# Errors of soconfig itself.
	out=$(soconfig -F x datafilt sometimes inet:stream:tcp 2>&1)
	rc=$?
	[ "$rc" = 2 ] || fail "bad syntax: status $rc ($out)"
	out=$(soconfig -F x datafilt auto inet:stream:sctp 2>&1)
	rc=$?
	[ "$rc" = 2 ] && [[ $out == *"bad protocol"* ]] ||
	    fail "bad tuple: status $rc ($out)"
	out=$(soconfig -F nosuch 2>&1)
	rc=$?
	[ "$rc" = 5 ] && [[ $out == *"unknown filter"* ]] ||
	    fail "unknown filter: status $rc ($out)"
	out=$(soconfig -F x nosuchmodule auto inet:stream:tcp 2>&1)
	rc=$?
	[ "$rc" = 5 ] && [[ $out == *"unknown filter module"* ]] ||
	    fail "unknown module: status $rc ($out)"
	out=$(soconfig -F datafilt datafilt auto inet:stream:tcp 2>&1)
	rc=$?
	[ "$rc" = 1 ] && [[ $out == *"already configured"* ]] ||
	    fail "duplicate: status $rc ($out)"
	out=$(soconfig -p 99999999 2>&1)
	rc=$?
	[ "$rc" = 2 ] || [ "$rc" = 5 ] || fail "unknown process: status $rc ($out)"
	log "soconfig errors: clear messages and statuses"
}
