# shellcheck shell=bash
# xor_64m: two xfer programs (tests/e2e/xfer.c), a sender and a receiver,
# both under the preload with xorfilt automatic on TCP (key 90), exchange
# 64 MiB through a python3 relay that is NOT preloaded and hashes what
# crosses it.  Sender and receiver agree on the CRC of the data, the bytes
# on the wire differ (they are the data XORed with 90, in both directions),
# and without the preload the relay sees the data itself.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3)

XOR_BYTES=67108864
XOR_SEED=20240601
XOR_KEY=90

# transfer TAG PREFIX...: one transfer, xfer run under the command prefix
# PREFIX; leaves sender, receiver and relay output in $E2E_TMP/*-TAG.out.
transfer()
{
	local tag=$1 rport lport rpid lpid rc
	shift
	rport=$(free_port tcp) || fail "no free port"
	lport=$(free_port tcp) || fail "no free port"
	start_bg "recv-$tag" "$@" "$E2E_BINDIR/xfer" recv "$rport"
	rpid=$BG_PID
	wait_port "$rport" tcp "$rpid"
	start_bg "relay-$tag" "${BASE_ENV[@]}" python3 "$E2E_SRC/helpers.py" \
	    relay "$lport" "$rport"
	lpid=$BG_PID
	wait_port "$lport" tcp "$lpid"
	run_client -t 300 "send-$tag" "$@" "$E2E_BINDIR/xfer" send "$lport" \
	    "$XOR_BYTES" "$XOR_SEED" "$XOR_KEY"
	rc=$?
	log "sender ($tag): $(tr '\n' ';' <"$E2E_TMP/send-$tag.out")"
	expect_ok "sender ($tag)" "$rc"
	finish_bg "$rpid" 30
	rc=$?
	expect_ok "receiver ($tag)" "$rc"
	finish_bg "$lpid" 30
	rc=$?
	expect_ok "relay ($tag)" "$rc"
	log "receiver ($tag): $(cat "$E2E_TMP/recv-$tag.out")"
	log "relay ($tag): $(tr '\n' ';' <"$E2E_TMP/relay-$tag.out")"
}

# field FILE KEY N: the Nth field of the line of FILE that starts with KEY.
field()
{
	awk -v k="$2" -v n="$3" '$1 == k { print $n; exit }' "$1"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" tag sent recv xored peer c2s
	local s2c answer_crc

	need_file "$E2E_BINDIR/xfer"
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "xorfilt";
    module    = "xorfilt";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp", "inet6:stream:tcp" ];
    params    = { key = $XOR_KEY; };
  }
);
CONF

	set_preload "$conf"
	for tag in base pre; do
		if [ "$tag" = base ]; then
			transfer base "${BASE_ENV[@]}"
		else
			transfer pre "${PRELOAD_ENV[@]}"
		fi
		sent=$(field "$E2E_TMP/send-$tag.out" sent 3)
		xored=$(field "$E2E_TMP/send-$tag.out" xored 3)
		peer=$(field "$E2E_TMP/send-$tag.out" peer 3)
		recv=$(field "$E2E_TMP/recv-$tag.out" recv 3)
		c2s=$(field "$E2E_TMP/relay-$tag.out" c2s 3)
		s2c=$(field "$E2E_TMP/relay-$tag.out" s2c 3)
		if [ -z "$sent" ] || [ -z "$recv" ] || [ -z "$c2s" ]; then
			fail "missing output ($tag): sent '$sent' recv '$recv' relay '$c2s'"
		fi
		[ "$(field "$E2E_TMP/recv-$tag.out" recv 2)" = "$XOR_BYTES" ] ||
		    fail "receiver ($tag) got $(field "$E2E_TMP/recv-$tag.out" recv 2) bytes, not $XOR_BYTES"
		[ "$(field "$E2E_TMP/relay-$tag.out" c2s 2)" = "$XOR_BYTES" ] ||
		    fail "relay ($tag) carried $(field "$E2E_TMP/relay-$tag.out" c2s 2) bytes, not $XOR_BYTES"
		[ "$sent" = "$recv" ] ||
		    fail "checksums differ ($tag): sender $sent, receiver $recv"
		[ "$peer" = "$sent" ] ||
		    fail "the receiver's answer read by the sender ($tag) is $peer, not $sent"
		if [ "$tag" = base ] || ! preloaded; then
			[ "$c2s" = "$sent" ] ||
			    fail "without the preload the relay saw $c2s, not the data's $sent"
			continue
		fi
		[ "$c2s" != "$sent" ] ||
		    fail "the relay saw the plain data (CRC $c2s): xorfilt did not transform the wire bytes"
		[ "$c2s" = "$xored" ] ||
		    fail "the wire bytes (CRC $c2s) are not the data XORed with $XOR_KEY (CRC $xored)"
		# The answer "BYTES CRC\n" came back XORed as well.
		answer_crc=$(printf '%s %s\n' "$XOR_BYTES" "$sent" |
		    python3 -c 'import sys, zlib; k = int(sys.argv[1]); d = bytes(b ^ k for b in sys.stdin.buffer.read()); print(f"{zlib.crc32(d):08x}")' "$XOR_KEY")
		[ "$s2c" = "$answer_crc" ] ||
		    fail "the receiver's answer on the wire (CRC $s2c) is not XORed with $XOR_KEY (CRC $answer_crc)"
	done
	log "64 MiB: sender and receiver agree, the wire bytes are XORed"
}
