/*
 * tcplog: one record per TCP connection, in the spirit of macOS's
 * tcplognke: local and remote address, process id and program, start
 * time, duration, bytes in and out, and how the connection ended.
 *
 * Parameters:
 *   path = "/var/log/tcplog.jsonl"   append one JSON object per line
 *                                    (the file is opened, written with one
 *                                    O_APPEND write and closed per record:
 *                                    lines of several processes never mix,
 *                                    and log rotation needs no signal)
 * Every record also goes to soconfigd's live stream (sof_record) when a
 * daemon runs; the file gets it regardless, so nothing is lost without
 * the daemon.
 *
 * A record:
 *   {"start":"2024-05-01T12:00:00.123Z","duration":0.0042,"pid":123,
 *    "prog":"curl","role":"active","local":"127.0.0.1:40312",
 *    "remote":"127.0.0.1:8080","bytes_in":519,"bytes_out":79,
 *    "end":"close"}
 * role: active (connect) or passive (accepted).  end: close (this side
 * closed first), peer_eof (the peer closed first), reset (the connection
 * was reset or failed with an error, then "error":"ECONNRESET"...),
 * connect_failed (with "error").  Sockets that never connected (a
 * listener, an unused socket) leave no record.
 *
 * Its own I/O (addresses, TCP state, the file) uses libc's functions
 * directly, not the interposed ones: nothing it does is seen by filters.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sockfilter.h"

#define TL_F_CONNECTED 0x1
#define TL_F_PEER_EOF  0x2
#define TL_F_FAILED    0x4
#define TL_F_RESET     0x8
#define TL_F_WRSHUT    0x10 /* this side sent its FIN (shutdown) */

struct tl_conn {
	int tc_passive;
	unsigned tc_flags;
	int tc_error; /* connect or socket error */
	struct timespec tc_start_rt, tc_start_mono;
	unsigned long long tc_in, tc_out;
	struct sockaddr_storage tc_local, tc_remote;
	socklen_t tc_llen, tc_rlen;
};

/* libc's own entry points (dlsym on libc.so.6, not the preload's). */
static struct {
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	ssize_t (*write)(int, const void *, size_t);
	int (*close)(int);
} tl_libc;

static void
tl_now(struct tl_conn *tc)
{
	clock_gettime(CLOCK_REALTIME, &tc->tc_start_rt);
	clock_gettime(CLOCK_MONOTONIC, &tc->tc_start_mono);
}

static struct tl_conn *
tl_new(int passive)
{
	struct tl_conn *tc = calloc(1, sizeof(*tc));

	if (tc != NULL) {
		tc->tc_passive = passive;
		tl_now(tc);
	}
	return tc;
}

static sof_rval_t
tl_attach_active_cb(sof_handle_t h, int family, int type, int proto, cred_t *cr,
    void **cookiep)
{
	if ((family != AF_INET && family != AF_INET6) ||
	    (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM)
		return SOF_RVAL_DETACH; /* TCP only */
	if ((*cookiep = tl_new(0)) == NULL)
		return SOF_RVAL_DETACH;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
tl_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	struct tl_conn *tc;

	if ((tc = tl_new(1)) == NULL)
		return SOF_RVAL_DETACH;
	tc->tc_flags |= TL_F_CONNECTED;
	if (laddr != NULL && laddrlen <= sizeof(tc->tc_local)) {
		memcpy(&tc->tc_local, laddr, laddrlen);
		tc->tc_llen = laddrlen;
	}
	if (faddr != NULL && faddrlen <= sizeof(tc->tc_remote)) {
		memcpy(&tc->tc_remote, faddr, faddrlen);
		tc->tc_rlen = faddrlen;
	}
	*cookiep = tc;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
tl_connect_cb(sof_handle_t h, void *cookie, struct sockaddr *addr,
    socklen_t *len, cred_t *cr)
{
	struct tl_conn *tc = cookie;

	/* The start of an outgoing connection is its connect(). */
	tl_now(tc);
	if (addr != NULL && *len <= sizeof(tc->tc_remote)) {
		memcpy(&tc->tc_remote, addr, *len);
		tc->tc_rlen = *len;
	}
	return SOF_RVAL_CONTINUE;
}

static mblk_t *
tl_data_in_cb(sof_handle_t h, void *cookie, mblk_t *mp, int flags,
    size_t *sizep)
{
	((struct tl_conn *)cookie)->tc_in += *sizep;
	return mp;
}

static mblk_t *
tl_data_out_cb(sof_handle_t h, void *cookie, mblk_t *mp, struct nmsghdr *msg,
    cred_t *cr, sof_rval_t *rvalp)
{
	((struct tl_conn *)cookie)->tc_out += msgdsize(mp);
	return mp;
}

/* At the last close, while the descriptor is still open: how did the
 * connection end, and the addresses the kernel knows. */
static void
tl_closing(sof_handle_t h, struct tl_conn *tc)
{
	int fd = sof_get_fd(h), err = 0;
	socklen_t len = sizeof(err);
	struct tcp_info ti;

	if (fd < 0 || tl_libc.getsockopt == NULL)
		return;
	if (tc->tc_llen == 0 && tl_libc.getsockname != NULL) {
		tc->tc_llen = sizeof(tc->tc_local);
		if (tl_libc.getsockname(fd, (struct sockaddr *)&tc->tc_local,
		        &tc->tc_llen) != 0)
			tc->tc_llen = 0;
	}
	if (tc->tc_rlen == 0 && tl_libc.getpeername != NULL) {
		tc->tc_rlen = sizeof(tc->tc_remote);
		if (tl_libc.getpeername(fd, (struct sockaddr *)&tc->tc_remote,
		        &tc->tc_rlen) != 0)
			tc->tc_rlen = 0;
	}
	if (tl_libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
	    err != 0) {
		tc->tc_flags |= TL_F_RESET;
		tc->tc_error = err;
	}
	len = sizeof(ti);
	if (tl_libc.getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
		/* CLOSE_WAIT/LAST_ACK: the peer's FIN came first.  CLOSE on
		 * a connected socket that saw no FIN: reset. */
		if (ti.tcpi_state == TCP_CLOSE_WAIT ||
		    ti.tcpi_state == TCP_LAST_ACK)
			tc->tc_flags |= TL_F_PEER_EOF;
		else if (ti.tcpi_state == TCP_CLOSE &&
		         (tc->tc_flags & TL_F_CONNECTED) &&
		         !(tc->tc_flags & TL_F_PEER_EOF)) {
			/* Closed with our FIN sent: the peer's came first
			 * (CLOSE_WAIT, LAST_ACK, CLOSE); without it, only a
			 * reset gets there. */
			if (tc->tc_flags & TL_F_WRSHUT)
				tc->tc_flags |= TL_F_PEER_EOF;
			else
				tc->tc_flags |= TL_F_RESET;
		}
	}
}

static void
tl_notify_cb(sof_handle_t h, void *cookie, sof_event_t ev, uintptr_t arg)
{
	struct tl_conn *tc = cookie;

	switch (ev) {
	case SOF_EV_CONNECTED:
		tc->tc_flags |= TL_F_CONNECTED;
		break;
	case SOF_EV_CONNECTFAILED:
		tc->tc_flags |= TL_F_FAILED;
		tc->tc_error = (int)arg;
		break;
	case SOF_EV_DISCONNECTED:
		tc->tc_flags |= TL_F_RESET;
		tc->tc_error = (int)arg;
		break;
	case SOF_EV_CANTRECVMORE:
		if (!(tc->tc_flags & TL_F_RESET))
			tc->tc_flags |= TL_F_PEER_EOF;
		break;
	case SOF_EV_CANTSENDMORE:
		tc->tc_flags |= TL_F_WRSHUT;
		break;
	case SOF_EV_CLOSING:
		if (arg == B_TRUE)
			tl_closing(h, tc);
		break;
	default:
		break;
	}
}

/* "1.2.3.4:80" or "[::1]:80". */
static void
tl_addr(const struct sockaddr_storage *ss, socklen_t len, char *buf,
    size_t blen)
{
	char host[INET6_ADDRSTRLEN];

	if (len >= sizeof(struct sockaddr_in) && ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, blen, "%s:%u", host, ntohs(sin->sin_port));
	} else if (len >= sizeof(struct sockaddr_in6) &&
	           ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, blen, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, blen, "?");
	}
}

/* A JSON string body (no quotes) of s into buf. */
static void
tl_json_str(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s != '\0' && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = '\0';
}

static const char *
tl_errname(int e)
{
	switch (e) {
	case ECONNRESET:
		return "ECONNRESET";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EPIPE:
		return "EPIPE";
	case EACCES:
		return "EACCES";
	default:
		return NULL;
	}
}

static void
tl_emit(sof_handle_t h, struct tl_conn *tc)
{
	char line[1024], local[64], remote[64], prog[128], ts[40], err[32];
	const char *path = sof_get_param(h, "path"), *end, *en;
	struct timespec now;
	struct tm tm;
	double dur;
	int n, fd;

	if (!(tc->tc_flags & (TL_F_CONNECTED | TL_F_FAILED)))
		return; /* never a connection */
	clock_gettime(CLOCK_MONOTONIC, &now);
	dur = (double)(now.tv_sec - tc->tc_start_mono.tv_sec) +
	      (double)(now.tv_nsec - tc->tc_start_mono.tv_nsec) / 1e9;
	gmtime_r(&tc->tc_start_rt.tv_sec, &tm);
	n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03ldZ",
	    tc->tc_start_rt.tv_nsec / 1000000);
	tl_addr(&tc->tc_local, tc->tc_llen, local, sizeof(local));
	tl_addr(&tc->tc_remote, tc->tc_rlen, remote, sizeof(remote));
	tl_json_str(program_invocation_short_name != NULL
	                ? program_invocation_short_name
	                : "?",
	    prog, sizeof(prog));
	if (tc->tc_flags & TL_F_FAILED)
		end = "connect_failed";
	else if (tc->tc_flags & TL_F_RESET)
		end = "reset";
	else if (tc->tc_flags & TL_F_PEER_EOF)
		end = "peer_eof";
	else
		end = "close";
	err[0] = '\0';
	if (tc->tc_error != 0) {
		en = tl_errname(tc->tc_error);
		if (en != NULL)
			snprintf(err, sizeof(err), ",\"error\":\"%s\"", en);
		else
			snprintf(err, sizeof(err), ",\"error\":\"E%d\"",
			    tc->tc_error);
	}
	n = snprintf(line, sizeof(line),
	    "{\"start\":\"%s\",\"duration\":%.6f,\"pid\":%d,\"prog\":\"%s\","
	    "\"role\":\"%s\",\"local\":\"%s\",\"remote\":\"%s\","
	    "\"bytes_in\":%llu,\"bytes_out\":%llu,\"end\":\"%s\"%s}",
	    ts, dur < 0 ? 0 : dur, (int)getpid(), prog,
	    tc->tc_passive ? "passive" : "active", local, remote, tc->tc_in,
	    tc->tc_out, end, err);
	if (n <= 0 || (size_t)n >= sizeof(line) - 1)
		return;
	(void)sof_record(h, line, (size_t)n);
	if (path == NULL || *path == '\0' || tl_libc.write == NULL)
		return;
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0644);
	if (fd < 0)
		return;
	(void)!tl_libc.write(fd, line, (size_t)n);
	tl_libc.close(fd);
}

static void
tl_detach_cb(sof_handle_t h, void *cookie, cred_t *cr)
{
	struct tl_conn *tc = cookie;

	if (tc == NULL)
		return;
	tl_emit(h, tc);
	free(tc);
}

static const sof_ops_t tl_ops = {
    .sofop_attach_active = tl_attach_active_cb,
    .sofop_attach_passive = tl_attach_passive_cb,
    .sofop_detach = tl_detach_cb,
    .sofop_data_in = tl_data_in_cb,
    .sofop_data_out = tl_data_out_cb,
    .sofop_connect = tl_connect_cb,
    .sofop_notify = tl_notify_cb,
};

__attribute__((constructor)) static void
tl_init(void)
{
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);

	if (libc != NULL) {
		*(void **)&tl_libc.getsockname = dlsym(libc, "getsockname");
		*(void **)&tl_libc.getpeername = dlsym(libc, "getpeername");
		*(void **)&tl_libc.getsockopt = dlsym(libc, "getsockopt");
		*(void **)&tl_libc.write = dlsym(libc, "write");
		*(void **)&tl_libc.close = dlsym(libc, "close");
		if (tl_libc.close == NULL)
			tl_libc.write = NULL;
	}
	(void)sof_register(SOF_VERSION, "tcplog", &tl_ops, 0);
}

__attribute__((destructor)) static void
tl_fini(void)
{
	(void)sof_unregister("tcplog");
}
