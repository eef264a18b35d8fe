/*
 * dmn.h: what libsockfilter.so and soconfigd share.  Included by
 * src/core/dmn.c (the library's side) and by soconfigd; nothing here is
 * exported to filters.
 *
 * Beside the daemon's socket S (SOCKFILTER_SOCKET, or DMN_DEFAULT_SOCKET)
 * live two more files:
 *
 *   S       stream socket, 0666: the JSON protocol (soconfigd/proto.c)
 *   S.reg   datagram socket, 0666: what interposed processes send, with
 *           the sender's credentials attached by the kernel (SO_PASSCRED):
 *           a registration carrying the process's counter region as a
 *           sealed memfd (SCM_RIGHTS), or one filter record (tcplog)
 *   S.cfg   regular file, 0644, DMN_CFG_SIZE bytes: the published
 *           configuration, mapped read-only by every interposed process
 *
 * Publishing a configuration costs the processes nothing per socket:
 * they compare dc_seq in their mapping of S.cfg with the value they last
 * loaded (two loads) and reparse only when it changed.  dc_seq is a
 * seqlock: odd while the daemon rewrites the text.
 *
 * Counters: each process keeps its counters (struct st_filter, struct
 * st_global) and its per-socket view in a region of its own (a memfd,
 * struct dmn_proc), which it hands to the daemon once.  The daemon maps it
 * and reads it when asked; no message per event.  The daemon keeps the
 * mapping after the process exits, so exited processes stay in the
 * totals.  Both sides run on the same machine and ABI, so the layout is
 * plain C structs checked with DMN_LAYOUT and the sizes.
 */
#ifndef SF_DMN_H
#define SF_DMN_H

#include <stdatomic.h>
#include <stdint.h>

#include "core.h"

#ifndef DMN_DEFAULT_SOCKET
#define DMN_DEFAULT_SOCKET "/run/sockfilter/soconfigd.sock"
#endif
#define DMN_SUFFIX_REG ".reg"
#define DMN_SUFFIX_CFG ".cfg"
/* SOCKFILTER_SOCKET=none: the library does not look for a daemon. */
#define DMN_SOCKET_NONE "none"

#define DMN_LAYOUT 1 /* bump on any change below */

/* Seqlock fences.  TSan rejects atomic_thread_fence; the other side of
 * these fences is another process, which TSan cannot see anyway, and on
 * x86 (the only TSan target here) a compiler barrier orders the same. */
#if defined(__SANITIZE_THREAD__)
#define DMN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DMN_TSAN 1
#endif
#endif
#ifdef DMN_TSAN
#define DMN_FENCE(mo) atomic_signal_fence(mo)
#else
#define DMN_FENCE(mo) atomic_thread_fence(mo)
#endif

/* ---------------------------------------------------------------------
 * S.cfg: the published configuration.
 * ------------------------------------------------------------------- */

#define DMN_CFG_MAGIC   0x53464346u /* "SFCF" */
#define DMN_CFG_HDRSZ   4096
#define DMN_CFG_SIZE    (256 * 1024)
#define DMN_CFG_TEXTMAX (DMN_CFG_SIZE - DMN_CFG_HDRSZ)

#define DMN_ST_STOPPED 0 /* no daemon: processes read their file */
#define DMN_ST_RUNNING 1

struct dmn_cfg {
	uint32_t dc_magic;
	uint32_t dc_layout;
	_Atomic uint64_t dc_seq;   /* seqlock over dc_len, dc_version, text */
	_Atomic uint64_t dc_epoch; /* daemon start number: changes = restart */
	_Atomic uint32_t dc_state; /* DMN_ST_* */
	int32_t dc_pid;            /* the daemon */
	uint32_t dc_len;           /* bytes of text at DMN_CFG_HDRSZ */
	uint32_t dc_pad;
	uint64_t dc_version; /* configuration version, 1 and up */
};

static inline char *
dmn_cfg_text(struct dmn_cfg *dc)
{
	return (char *)dc + DMN_CFG_HDRSZ;
}

/* ---------------------------------------------------------------------
 * A process's region (memfd, sealed against shrinking and growing).
 * ------------------------------------------------------------------- */

#define DMN_PROC_MAGIC 0x53465052u /* "SFPR" */
#define DMN_MAXFILT    128         /* counter entries (filter names) */
#define DMN_MAXSOCK    4096        /* sockets in the per-socket view */
#define DMN_SOCKFIL    16          /* = SOCK_MAXSTACK */
#define DMN_NOFILT     0xff        /* se_idx of a filter without an entry */

/* One filtered socket: written by the process at every stack change
 * (seqlock se_seq), read by the daemon for the pfiles view. */
struct dmn_sock {
	_Atomic uint32_t se_seq; /* odd while written */
	int32_t se_fd;           /* -1: free slot */
	int32_t se_family, se_type, se_proto;
	uint8_t se_n;                  /* filters, top first */
	uint8_t se_idx[DMN_SOCKFIL];   /* index in dp_filters */
	uint8_t se_flags[DMN_SOCKFIL]; /* FILF_* */
	uint8_t se_pad[3];
};

struct dmn_proc {
	uint32_t dp_magic;
	uint32_t dp_layout;
	uint32_t dp_size; /* sizeof(struct dmn_proc) */
	int32_t dp_pid;
	char dp_prog[64];
	_Atomic uint64_t dp_ack;   /* the daemon's dc_epoch once it has us */
	_Atomic uint32_t dp_nfilt; /* dp_filters entries in use */
	uint32_t dp_pad;
	atomic_ulong dp_sock_overflow; /* sockets the view had no room for */
	struct st_globals dp_global;
	struct st_filter dp_filters[DMN_MAXFILT];
	struct dmn_sock dp_socks[DMN_MAXSOCK];
};

#endif /* SF_DMN_H */
