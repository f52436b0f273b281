/*
 * Peer benchmark: DPDK rte_sched (hierarchical QoS scheduler) enqueue +
 * dequeue cost per packet, for side-by-side comparison with the htb crate's
 * `unthrottled/N` criterion benches.  Written for this project against the
 * public rte_sched API (rte_sched.h, DPDK 22.11); not part of CI.
 *
 * Setup per configuration: one port, one subport, N pipes (16 queues each:
 * 12 strict-priority TCs + 4 best-effort WRR queues), queue size 64, every
 * shaper (subport, pipe, every TC) at the port rate with 1 MB buckets, so
 * nothing limits and the figure is the pure scheduler cost.  A standing
 * backlog of --backlog (default 4) packets per pipe is queued first.  Then, in the
 * timed loop, each round takes BURST free mbufs, gives each a pseudo-random
 * destination (pipe, queue) and 64 B length, enqueues them, dequeues BURST
 * packets and recycles what came out.
 *
 * Output: one JSON object per line and configuration.
 *
 * usage: rte_sched_bench [EAL args] -- [--pipes 16,1024,4096] [--bursts 32,1]
 *                        [--packets N] [--repeats R] [--tc-ov 0|1|both]
 *                        [--backlog PACKETS_PER_PIPE]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_sched.h>
#include <rte_version.h>

#include "peer_common.h"

#define PKT_LEN 64
#define QSIZE 64
#define MAX_BURST 64
#define PORT_RATE 1250000000ULL /* 10 Gbit/s in bytes per second */
#define BUCKET 1000000ULL

/* Packets queued per pipe before timing starts (--backlog). */
static uint32_t backlog_per_pipe = 4;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*, same generator as the Rust benches. */
static inline uint64_t rng_next(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static inline uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(((rng_next() >> 32) * (uint64_t)n) >> 32);
}

static struct rte_sched_port *make_port(uint32_t n_pipes, bool tc_ov)
{
	static unsigned int seq;
	char name[64];
	snprintf(name, sizeof(name), "bench_port_%u", seq++);

	struct rte_sched_subport_profile_params subport_profile;
	memset(&subport_profile, 0, sizeof(subport_profile));
	subport_profile.tb_rate = PORT_RATE;
	subport_profile.tb_size = BUCKET;
	for (int tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; tc++)
		subport_profile.tc_rate[tc] = PORT_RATE;
	subport_profile.tc_period = 10; /* ms */

	struct rte_sched_port_params port_params;
	memset(&port_params, 0, sizeof(port_params));
	port_params.name = name;
	port_params.socket = (int)rte_socket_id();
	port_params.rate = PORT_RATE;
	port_params.mtu = 1522;
	port_params.frame_overhead = RTE_SCHED_FRAME_OVERHEAD_DEFAULT;
	port_params.n_subports_per_port = 1;
	port_params.subport_profiles = &subport_profile;
	port_params.n_subport_profiles = 1;
	port_params.n_max_subport_profiles = 1;
	port_params.n_pipes_per_subport = n_pipes;

	struct rte_sched_port *port = rte_sched_port_config(&port_params);
	if (port == NULL) {
		fprintf(stderr, "rte_sched_port_config failed\n");
		return NULL;
	}

	struct rte_sched_pipe_params pipe_profile;
	memset(&pipe_profile, 0, sizeof(pipe_profile));
	pipe_profile.tb_rate = PORT_RATE;
	pipe_profile.tb_size = BUCKET;
	for (int tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; tc++)
		pipe_profile.tc_rate[tc] = PORT_RATE;
	pipe_profile.tc_period = 40; /* ms */
	pipe_profile.tc_ov_weight = 1;
	for (int q = 0; q < RTE_SCHED_BE_QUEUES_PER_PIPE; q++)
		pipe_profile.wrr_weights[q] = 1;

	struct rte_sched_subport_params subport_params;
	memset(&subport_params, 0, sizeof(subport_params));
	subport_params.n_pipes_per_subport_enabled = n_pipes;
	for (int tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; tc++)
		subport_params.qsize[tc] = QSIZE;
	subport_params.pipe_profiles = &pipe_profile;
	subport_params.n_pipe_profiles = 1;
	subport_params.n_max_pipe_profiles = 1;
	subport_params.cman_params = NULL;

	int rc = rte_sched_subport_config(port, 0, &subport_params, 0);
	if (rc != 0) {
		fprintf(stderr, "rte_sched_subport_config: %d\n", rc);
		rte_sched_port_free(port);
		return NULL;
	}
	rc = rte_sched_subport_tc_ov_config(port, 0, tc_ov);
	if (rc != 0) {
		fprintf(stderr, "rte_sched_subport_tc_ov_config: %d\n", rc);
		rte_sched_port_free(port);
		return NULL;
	}
	for (uint32_t p = 0; p < n_pipes; p++) {
		rc = rte_sched_pipe_config(port, 0, p, 0);
		if (rc != 0) {
			fprintf(stderr, "rte_sched_pipe_config(%u): %d\n", p, rc);
			rte_sched_port_free(port);
			return NULL;
		}
	}
	return port;
}

/* Gives `m` a random (pipe, queue) among the 16 queues of a random pipe. */
static inline void stamp(struct rte_sched_port *port, struct rte_mbuf *m, uint32_t n_pipes)
{
	uint32_t pipe = rng_below(n_pipes);
	uint32_t q = rng_below(RTE_SCHED_QUEUES_PER_PIPE);
	uint32_t tc = q < RTE_SCHED_TRAFFIC_CLASS_BE ? q : RTE_SCHED_TRAFFIC_CLASS_BE;
	uint32_t queue = q < RTE_SCHED_TRAFFIC_CLASS_BE ? 0 : q - RTE_SCHED_TRAFFIC_CLASS_BE;
	m->pkt_len = PKT_LEN;
	m->data_len = PKT_LEN;
	rte_sched_port_pkt_write(port, m, 0, pipe, tc, queue, RTE_COLOR_GREEN);
}

struct result {
	double ns_per_pkt;
	double cpu_ns_per_pkt;
	double enq_share;
	uint64_t packets;
	uint64_t dropped;
};

static int run_once(struct rte_mempool *pool, uint32_t n_pipes, uint32_t burst, bool tc_ov,
		    uint64_t packets, struct result *out)
{
	struct rte_sched_port *port = make_port(n_pipes, tc_ov);
	if (port == NULL)
		return -1;

	/* Free list of mbufs: the backlog plus a few bursts in flight. */
	uint32_t n_mbufs = n_pipes * backlog_per_pipe + 4 * MAX_BURST;
	struct rte_mbuf **free_list = calloc(n_mbufs, sizeof(*free_list));
	if (free_list == NULL || rte_pktmbuf_alloc_bulk(pool, free_list, n_mbufs) != 0) {
		fprintf(stderr, "mbuf allocation of %u failed\n", n_mbufs);
		free(free_list);
		rte_sched_port_free(port);
		return -1;
	}
	uint32_t n_free = n_mbufs;
	uint64_t dropped = 0;

	/* Standing backlog. */
	uint32_t backlog = n_pipes * backlog_per_pipe;
	for (uint32_t done = 0; done < backlog;) {
		uint32_t n = RTE_MIN((uint32_t)MAX_BURST, backlog - done);
		struct rte_mbuf **b = &free_list[n_free - n];
		for (uint32_t i = 0; i < n; i++)
			stamp(port, b[i], n_pipes);
		int k = rte_sched_port_enqueue(port, b, n);
		/* Refused packets were freed by rte_sched: replace them. */
		dropped += n - (uint32_t)k;
		n_free -= n;
		if ((uint32_t)k < n &&
		    rte_pktmbuf_alloc_bulk(pool, &free_list[n_free], n - (uint32_t)k) == 0)
			n_free += n - (uint32_t)k;
		done += n;
	}

	/* Warm-up rounds (not timed), then the timed loop. */
	struct rte_mbuf *outb[MAX_BURST];
	uint64_t sent = 0, enq_cycles = 0, all_cycles = 0;
	double t0 = 0, c0 = 0;
	uint64_t warm = packets / 10;
	bool timing = false;
	uint64_t cyc_start = 0;
	while (sent < packets) {
		if (!timing && sent >= warm) {
			timing = true;
			sent = 0;
			enq_cycles = 0;
			dropped = 0;
			t0 = now_ns();
			c0 = cpu_ns();
			cyc_start = rte_rdtsc();
		}
		uint32_t n = RTE_MIN(burst, n_free);
		struct rte_mbuf **b = &free_list[n_free - n];
		for (uint32_t i = 0; i < n; i++)
			stamp(port, b[i], n_pipes);
		uint64_t e0 = rte_rdtsc();
		int k = rte_sched_port_enqueue(port, b, n);
		enq_cycles += rte_rdtsc() - e0;
		n_free -= n;
		if ((uint32_t)k < n) {
			dropped += n - (uint32_t)k;
			if (rte_pktmbuf_alloc_bulk(pool, &free_list[n_free], n - (uint32_t)k) == 0)
				n_free += n - (uint32_t)k;
		}
		int d = rte_sched_port_dequeue(port, outb, burst);
		for (int i = 0; i < d; i++)
			free_list[n_free++] = outb[i];
		sent += (uint64_t)d;
	}
	all_cycles = rte_rdtsc() - cyc_start;
	double t1 = now_ns(), c1 = cpu_ns();

	out->packets = sent;
	out->ns_per_pkt = (t1 - t0) / (double)sent;
	out->cpu_ns_per_pkt = (c1 - c0) / (double)sent;
	out->enq_share = all_cycles ? (double)enq_cycles / (double)all_cycles : 0;
	out->dropped = dropped;

	/* Drain and give everything back. */
	for (;;) {
		int d = rte_sched_port_dequeue(port, outb, MAX_BURST);
		if (d <= 0)
			break;
		for (int i = 0; i < d; i++)
			free_list[n_free++] = outb[i];
	}
	rte_pktmbuf_free_bulk(free_list, n_free);
	free(free_list);
	rte_sched_port_free(port);
	return 0;
}

static int parse_list(const char *s, uint32_t *out, int max)
{
	int n = 0;
	char *copy = strdup(s), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
		out[n++] = (uint32_t)strtoul(tok, NULL, 10);
	free(copy);
	return n;
}

int main(int argc, char **argv)
{
	peer_eal_init(&argc, &argv);

	uint32_t pipes[8] = {16, 1024, 4096}, bursts[8] = {32, 1};
	int n_pipes = 3, n_bursts = 2, repeats = 3;
	uint64_t packets = 20000000;
	int ov_modes[2] = {0, 1}, n_ov = 1; /* TC oversubscription off by default */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pipes") && i + 1 < argc)
			n_pipes = parse_list(argv[++i], pipes, 8);
		else if (!strcmp(argv[i], "--bursts") && i + 1 < argc)
			n_bursts = parse_list(argv[++i], bursts, 8);
		else if (!strcmp(argv[i], "--packets") && i + 1 < argc)
			packets = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--backlog") && i + 1 < argc)
			backlog_per_pipe = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
			repeats = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tc-ov") && i + 1 < argc) {
			const char *v = argv[++i];
			if (!strcmp(v, "both")) {
				ov_modes[0] = 0;
				ov_modes[1] = 1;
				n_ov = 2;
			} else {
				ov_modes[0] = atoi(v) != 0;
				n_ov = 1;
			}
		} else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (repeats < 1 || repeats > 32)
		repeats = 3;

	uint32_t max_pipes = 0;
	for (int i = 0; i < n_pipes; i++)
		max_pipes = RTE_MAX(max_pipes, pipes[i]);
	for (int i = 0; i < n_bursts; i++)
		if (bursts[i] < 1 || bursts[i] > MAX_BURST) {
			fprintf(stderr, "burst must be 1..%d\n", MAX_BURST);
			return 2;
		}
	uint32_t pool_size = max_pipes * backlog_per_pipe + 16 * MAX_BURST;
	struct rte_mempool *pool = rte_pktmbuf_pool_create("bench_pool", pool_size, 256, 0,
							   RTE_MBUF_DEFAULT_BUF_SIZE,
							   (int)rte_socket_id());
	if (pool == NULL) {
		fprintf(stderr, "mempool: %s\n", rte_strerror(rte_errno));
		return 1;
	}

	for (int o = 0; o < n_ov; o++)
		for (int p = 0; p < n_pipes; p++)
			for (int b = 0; b < n_bursts; b++) {
				double ns[32], cpu[32], share[32];
				uint64_t drops = 0, pk = 0;
				int ok = 0;
				for (int r = 0; r < repeats; r++) {
					struct result res;
					if (run_once(pool, pipes[p], bursts[b], ov_modes[o], packets, &res) != 0)
						break;
					ns[ok] = res.ns_per_pkt;
					cpu[ok] = res.cpu_ns_per_pkt;
					share[ok] = res.enq_share;
					drops += res.dropped;
					pk = res.packets;
					ok++;
				}
				if (ok == 0)
					return 1;
				double raw[32];
				memcpy(raw, ns, sizeof(double) * (size_t)ok);
				qsort(ns, (size_t)ok, sizeof(double), cmp_double);
				qsort(cpu, (size_t)ok, sizeof(double), cmp_double);
				qsort(share, (size_t)ok, sizeof(double), cmp_double);
				printf("{\"peer\":\"rte_sched\",\"dpdk\":\"%s\",\"pipes\":%u,"
				       "\"queues_per_pipe\":%d,\"burst\":%u,\"tc_ov\":%s,\"pkt_len\":%d,"
				       "\"backlog_per_pipe\":%u,\"packets_per_run\":%" PRIu64
				       ",\"runs\":%d,\"ns_per_pkt_median\":%.2f,\"ns_per_pkt_min\":%.2f,"
				       "\"cpu_ns_per_pkt_median\":%.2f,\"mpps_median\":%.3f,"
				       "\"enqueue_share_median\":%.3f,\"dropped\":%" PRIu64 ",\"ns_per_pkt_runs\":[",
				       rte_version(), pipes[p], RTE_SCHED_QUEUES_PER_PIPE, bursts[b],
				       ov_modes[o] ? "true" : "false", PKT_LEN, backlog_per_pipe, pk, ok,
				       ns[ok / 2], ns[0], cpu[ok / 2], 1e3 / ns[ok / 2], share[ok / 2],
				       drops);
				for (int r = 0; r < ok; r++)
					printf("%s%.2f", r ? "," : "", raw[r]);
				printf("]}\n");
				fflush(stdout);
			}

	rte_mempool_free(pool);
	rte_eal_cleanup();
	return 0;
}
