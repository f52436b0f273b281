/* What the DPDK peers of benches/peers share: their clocks, the comparator
 * their medians sort with, and the EAL start. Included by each NAME.c;
 * dpdk_peer.sh rebuilds a peer when this file changes too. */
#ifndef HTB_PEER_COMMON_H
#define HTB_PEER_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>

/* Monotonic wall-clock time, ns. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* This thread's CPU time, ns: against the wall time, how long the thread was
 * not running (this VM is shared, and wall time includes other tenants'
 * slices). */
static inline uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* qsort comparator for doubles (medians). */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Starts the EAL with the arguments before "--" and moves *argc / *argv past
 * them, to the peer's own; exits with status 1, saying why, if it fails. */
static inline void peer_eal_init(int *argc, char ***argv)
{
	int ret = rte_eal_init(*argc, *argv);
	if (ret < 0) {
		fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		exit(1);
	}
	*argc -= ret;
	*argv += ret;
}

#endif
