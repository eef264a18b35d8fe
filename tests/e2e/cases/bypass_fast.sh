# shellcheck shell=bash
# bypass_fast: a filter that bypasses itself puts the socket back on the
# unfiltered fast path.  accf_data, automatic on TCP, takes itself out of
# the way of a client socket at connect() (sof_bypass); the client under
# the preload then talks to an echo server as without it, and the
# library's debug log says the descriptor went back to the fast path.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3)

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" port rc

	preloaded || skip "bypass needs the preload (--no-preload)"
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "accf_data";
    module    = "accf_data";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp" ];
  }
);
CONF
	port=$(free_port tcp) || fail "no free port"
	start_bg echo "${BASE_ENV[@]}" python3 "$E2E_SRC/helpers.py" tcp-echo \
	    127.0.0.1 "$port"
	wait_port "$port" tcp "$BG_PID"
	head -c 65536 /dev/urandom >"$E2E_TMP/input.bin"
	set_preload "$conf" SOCKFILTER_DEBUG=1
	run_client -i "$E2E_TMP/input.bin" client "${PRELOAD_ENV[@]}" \
	    python3 -c '
import socket, sys
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
sys.stdout.buffer.write(got)
' "$port"
	rc=$?
	expect_ok "client" "$rc"
	expect_same "$E2E_TMP/input.bin" "$E2E_TMP/client.out" \
	    "echo through a bypassed socket"
	expect_grep 'every filter bypassed: fast path' "$E2E_TMP/client.err" \
	    "the client's debug log"
}
