/*
 * xfer: moves deterministic pseudo-random data over one TCP connection on
 * loopback, for the end-to-end tests (xor_64m).
 *
 *   xfer recv PORT
 *	listen on 127.0.0.1:PORT, accept one connection, read to EOF, answer
 *	"BYTES CRC\n" on the connection, close; print "recv BYTES CRC".
 *   xfer send PORT BYTES SEED [KEY]
 *	connect to 127.0.0.1:PORT, send BYTES bytes of the stream of SEED,
 *	shut down writing, read the receiver's answer to EOF; print
 *	"sent BYTES CRC", with KEY also "xored BYTES CRC" (the CRC of the
 *	same data with every byte XORed with KEY), then "peer BYTES CRC".
 *
 * CRC is CRC-32 (zlib's crc32()), printed as 8 hex digits, so that a relay
 * written in python can compare what crossed it.  Writes and reads vary in
 * size and alternate between write/send/writev and read/recv/readv.  The
 * status is 0 when the peer's answer matches what was sent, 1 when it does
 * not, 2 on a usage or system error.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define XF_BUFSZ 65536

static uint32_t xf_crctab[256];

static void
xf_crc_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		xf_crctab[i] = c;
	}
}

/* xf_crc(crc, buf, len): crc32() continued over buf (start with 0). */
static uint32_t
xf_crc(uint32_t crc, const unsigned char *buf, size_t len)
{
	size_t i;

	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = xf_crctab[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* xorshift64*: the data stream and the chunk sizes. */
struct xf_rng {
	uint64_t s;
	uint64_t word;
	int left;
};

static void
xf_rng_init(struct xf_rng *r, uint64_t seed)
{
	r->s = seed * 0x9e3779b97f4a7c15ull + 1;
	r->left = 0;
}

static uint64_t
xf_rng_next(struct xf_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

static void
xf_rng_fill(struct xf_rng *r, unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (r->left == 0) {
			r->word = xf_rng_next(r);
			r->left = 8;
		}
		buf[i] = (unsigned char)r->word;
		r->word >>= 8;
		r->left--;
	}
}

/* A chunk size in [1, XF_BUFSZ], small ones now and then. */
static size_t
xf_chunk(struct xf_rng *r)
{
	uint64_t v = xf_rng_next(r);

	if (v % 8 == 0)
		return 1 + (size_t)(v >> 8) % 64;
	return 1 + (size_t)(v >> 8) % XF_BUFSZ;
}

static void
xf_die(const char *what)
{
	fprintf(stderr, "xfer: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
xf_addr(struct sockaddr_in *sin, const char *port)
{
	char *end;
	long p = strtol(port, &end, 10);

	if (*port == '\0' || *end != '\0' || p <= 0 || p > 65535) {
		fprintf(stderr, "xfer: bad port %s\n", port);
		exit(2);
	}
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)p);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* Write all of buf, the call chosen by turn. */
static void
xf_write_all(int fd, const unsigned char *buf, size_t len, unsigned turn)
{
	struct iovec iov[2];
	ssize_t n;
	size_t half;

	while (len > 0) {
		switch (turn % 3) {
		case 0:
			n = write(fd, buf, len);
			break;
		case 1:
			n = send(fd, buf, len, MSG_NOSIGNAL);
			break;
		default:
			half = len / 2;
			iov[0].iov_base = (void *)(uintptr_t)buf;
			iov[0].iov_len = half;
			iov[1].iov_base = (void *)(uintptr_t)(buf + half);
			iov[1].iov_len = len - half;
			n = writev(fd, iov, 2);
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			xf_die("write");
		buf += n;
		len -= (size_t)n;
	}
}

/* Read up to len bytes, the call chosen by turn; 0 at EOF. */
static size_t
xf_read_some(int fd, unsigned char *buf, size_t len, unsigned turn)
{
	struct iovec iov[2];
	ssize_t n;
	size_t half;

	for (;;) {
		switch (turn % 3) {
		case 0:
			n = read(fd, buf, len);
			break;
		case 1:
			n = recv(fd, buf, len, 0);
			break;
		default:
			half = len / 2;
			iov[0].iov_base = buf;
			iov[0].iov_len = half;
			iov[1].iov_base = buf + half;
			iov[1].iov_len = len - half;
			n = readv(fd, iov, 2);
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			xf_die("read");
		return (size_t)n;
	}
}

static int
xf_recv(const char *port)
{
	static unsigned char buf[XF_BUFSZ];
	struct sockaddr_in sin;
	struct xf_rng sizes;
	uint64_t total = 0;
	uint32_t crc = 0;
	unsigned turn = 0;
	char answer[64];
	size_t n;
	int lfd, fd, one = 1;

	xf_addr(&sin, port);
	xf_rng_init(&sizes, 7);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		xf_die("socket");
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		xf_die("setsockopt");
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		xf_die("bind");
	if (listen(lfd, 1) < 0)
		xf_die("listen");
	do {
		fd = accept(lfd, NULL, NULL);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		xf_die("accept");
	close(lfd);
	while ((n = xf_read_some(fd, buf, xf_chunk(&sizes), turn++)) > 0) {
		crc = xf_crc(crc, buf, n);
		total += n;
	}
	snprintf(answer, sizeof(answer), "%" PRIu64 " %08" PRIx32 "\n", total,
	    crc);
	xf_write_all(fd, (const unsigned char *)answer, strlen(answer), 0);
	if (close(fd) < 0)
		xf_die("close");
	printf("recv %" PRIu64 " %08" PRIx32 "\n", total, crc);
	return 0;
}

static int
xf_send(const char *port, const char *bytes, const char *seed, const char *key)
{
	static unsigned char buf[XF_BUFSZ];
	struct sockaddr_in sin;
	struct xf_rng data, sizes;
	uint64_t left, total;
	uint32_t crc = 0, xcrc = 0;
	unsigned long k = 0;
	unsigned turn = 0;
	char answer[64], expect[64];
	size_t n, i, alen = 0;
	int fd;

	xf_addr(&sin, port);
	total = left = strtoull(bytes, NULL, 0);
	xf_rng_init(&data, strtoull(seed, NULL, 0));
	xf_rng_init(&sizes, 11);
	if (key != NULL)
		k = strtoul(key, NULL, 0) & 0xff;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		xf_die("socket");
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		xf_die("connect");
	while (left > 0) {
		n = xf_chunk(&sizes);
		if (n > left)
			n = (size_t)left;
		xf_rng_fill(&data, buf, n);
		crc = xf_crc(crc, buf, n);
		xf_write_all(fd, buf, n, turn++);
		if (key != NULL) {
			for (i = 0; i < n; i++)
				buf[i] ^= (unsigned char)k;
			xcrc = xf_crc(xcrc, buf, n);
		}
		left -= n;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		xf_die("shutdown");
	while (alen < sizeof(answer) - 1) {
		n = xf_read_some(fd, (unsigned char *)answer + alen,
		    sizeof(answer) - 1 - alen, turn++);
		if (n == 0)
			break;
		alen += n;
	}
	answer[alen] = '\0';
	close(fd);
	printf("sent %" PRIu64 " %08" PRIx32 "\n", total, crc);
	if (key != NULL)
		printf("xored %" PRIu64 " %08" PRIx32 "\n", total, xcrc);
	printf("peer %s",
	    alen > 0 && answer[alen - 1] == '\n' ? answer : "(no answer)\n");
	snprintf(expect, sizeof(expect), "%" PRIu64 " %08" PRIx32 "\n", total,
	    crc);
	return strcmp(answer, expect) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	xf_crc_init();
	if (argc == 3 && strcmp(argv[1], "recv") == 0)
		return xf_recv(argv[2]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "send") == 0)
		return xf_send(argv[2], argv[3], argv[4],
		    argc == 6 ? argv[5] : NULL);
	fprintf(stderr, "usage: xfer recv PORT\n"
	                "       xfer send PORT BYTES SEED [KEY]\n");
	return 2;
}
