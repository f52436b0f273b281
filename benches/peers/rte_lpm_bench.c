/*
 * Peer benchmark: DPDK rte_lpm (DIR-24-8) insert and lookup on a route
 * file, for side-by-side comparison with `htb bench fib` on the same files.
 * Written for this project against the public rte_lpm API (rte_lpm.h, DPDK
 * 22.11); not part of CI.
 *
 * Input: the files `htb bench fib --routes R --addrs A` reads, IPv4 only:
 * routes as `PREFIX/LEN VALUE` per line (VALUE a number below 2^24, the
 * rte_lpm next hop), addresses one per line (`benches/examples/fib_dump.rs`
 * writes both from the criterion bench's synthetic table).  rte_lpm holds
 * depths 1..32 only: a `/0` line is skipped and counted in "skipped" (the
 * synthetic table has none).  Other lines (`#`, IPv6, route types) are
 * skipped and counted too.
 *
 * Timed, as `htb bench fib` times its own side:
 *   insert_ns_per_route   rte_lpm_add of every route into an empty table,
 *                         in file order (one pass; creation not timed);
 *   ns_per_lookup         rte_lpm_lookup_bulk over the addresses in chunks
 *                         of BULK, answers kept;
 *   ns_per_lookup_x4      rte_lpm_lookupx4 (SSE, 4 addresses per call);
 *   ns_per_lookup_single  rte_lpm_lookup one address at a time;
 * each lookup figure the mean over as many passes as fit in about 0.5 s
 * after one untimed pass.  bytes: what the table took from the DPDK heap
 * (rte_malloc socket stats before and after rte_lpm_create: tbl24 of 2^24
 * 4-byte entries, the tbl8 groups, the rule array; rte_lpm allocates it
 * all at creation).  number_tbl8s is sized to what the file needs (one
 * group per /24 holding a longer prefix), max_rules to the route count.
 *
 * Output: one JSON object per line and round.  With --rounds N the three
 * lookup figures are taken N times on the one table (an insert pass takes
 * minutes at 1M routes); with --between CMD, CMD runs through the shell
 * before every round, e.g. `htb bench fib` on the same files, so that the
 * two sides alternate under the same machine load.  --answers FILE writes
 * the bulk lookup's next hop per address (`-` for no match), for checking
 * against `htb route lookup` on the same files.
 *
 * usage: rte_lpm_bench [EAL args] -- --routes FILE --addrs FILE
 *                      [--rounds N] [--between CMD] [--answers FILE]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_version.h>

#include "peer_common.h"

#define BULK 4096
#define BUDGET_NS 500000000ULL

struct route {
	uint32_t ip;
	uint8_t depth;
	uint32_t hop;
};

/* Parses a dotted quad at *s, advancing past it; -1 when it is not one. */
static int parse_ip(const char **s, uint32_t *ip)
{
	uint32_t v = 0;
	const char *p = *s;
	for (int k = 0; k < 4; k++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned o = 0;
		while (*p >= '0' && *p <= '9')
			o = o * 10 + (unsigned)(*p++ - '0');
		if (o > 255)
			return -1;
		v = v << 8 | o;
		if (k < 3 && *p++ != '.')
			return -1;
	}
	*s = p;
	*ip = v;
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: read failed\n", path);
		exit(1);
	}
	b[n] = 0;
	fclose(f);
	return b;
}

/* Mean ns per address of `pass` over about BUDGET_NS, after one untimed
 * pass (which also sizes the number of passes). */
#define TIME_PER_ITEM(n, result, pass)                                        \
	do {                                                                  \
		uint64_t t0_ = now_ns();                                      \
		pass;                                                         \
		uint64_t once_ = now_ns() - t0_ + 1;                          \
		uint64_t rounds_ = BUDGET_NS / once_;                         \
		if (rounds_ < 1)                                              \
			rounds_ = 1;                                          \
		if (rounds_ > 1000)                                           \
			rounds_ = 1000;                                       \
		t0_ = now_ns();                                               \
		for (uint64_t r_ = 0; r_ < rounds_; r_++) {                   \
			pass;                                                 \
		}                                                             \
		(result) = (double)(now_ns() - t0_) / ((double)rounds_ * (n)); \
	} while (0)

int main(int argc, char **argv)
{
	peer_eal_init(&argc, &argv);

	const char *routes_path = NULL, *addrs_path = NULL, *between = NULL;
	const char *answers = NULL;
	int rounds = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--routes") && i + 1 < argc)
			routes_path = argv[++i];
		else if (!strcmp(argv[i], "--addrs") && i + 1 < argc)
			addrs_path = argv[++i];
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--between") && i + 1 < argc)
			between = argv[++i];
		else if (!strcmp(argv[i], "--answers") && i + 1 < argc)
			answers = argv[++i];
		else {
			fprintf(stderr, "usage: rte_lpm_bench [EAL] -- --routes FILE --addrs FILE [--rounds N] [--between CMD] [--answers FILE]\n");
			return 2;
		}
	}
	if (!routes_path || !addrs_path || rounds < 1) {
		fprintf(stderr, "usage: rte_lpm_bench [EAL] -- --routes FILE --addrs FILE [--rounds N] [--between CMD] [--answers FILE]\n");
		return 2;
	}

	/* Routes. */
	char *text = slurp(routes_path);
	size_t cap = 1 << 16, n_routes = 0, skipped = 0, skipped_default = 0;
	struct route *routes = malloc(cap * sizeof(*routes));
	for (char *line = text; *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = 0;
		const char *p = line;
		uint32_t ip;
		char *q;
		if (parse_ip(&p, &ip) == 0 && *p == '/') {
			unsigned long len = strtoul(p + 1, &q, 10);
			unsigned long hop = strtoul(q, &q, 10);
			if (len == 0) {
				skipped_default++;
			} else if (len <= 32 && hop < (1UL << 24)) {
				if (n_routes == cap)
					routes = realloc(routes, (cap *= 2) * sizeof(*routes));
				routes[n_routes++] = (struct route){ip, (uint8_t)len, (uint32_t)hop};
			} else {
				skipped++;
			}
		} else if (*line) {
			skipped++;
		}
		if (!end)
			break;
		line = end + 1;
	}
	free(text);

	/* Addresses. */
	text = slurp(addrs_path);
	size_t acap = 1 << 16, n_addrs = 0;
	uint32_t *addrs = malloc(acap * sizeof(*addrs));
	for (char *line = text; *line;) {
		char *end = strchr(line, '\n');
		const char *p = line;
		uint32_t ip;
		if (parse_ip(&p, &ip) == 0) {
			if (n_addrs == acap)
				addrs = realloc(addrs, (acap *= 2) * sizeof(*addrs));
			addrs[n_addrs++] = ip;
		}
		if (!end)
			break;
		line = end + 1;
	}
	free(text);
	/* Whole chunks of BULK (and of 4 for x4). */
	size_t n_look = n_addrs / BULK * BULK;
	if (n_look == 0) {
		fprintf(stderr, "need at least %d IPv4 addresses\n", BULK);
		return 1;
	}

	/* One tbl8 group per /24 that holds a prefix longer than /24. */
	uint8_t *has8 = calloc(1 << 24, 1);
	uint32_t tbl8s = 0;
	for (size_t i = 0; i < n_routes; i++)
		if (routes[i].depth > 24 && !has8[routes[i].ip >> 8]) {
			has8[routes[i].ip >> 8] = 1;
			tbl8s++;
		}
	free(has8);

	struct rte_malloc_socket_stats before, after;
	rte_malloc_get_socket_stats(rte_socket_id(), &before);
	struct rte_lpm_config cfg = {
		.max_rules = (uint32_t)n_routes,
		.number_tbl8s = tbl8s ? tbl8s : 1,
		.flags = 0,
	};
	struct rte_lpm *lpm = rte_lpm_create("bench", rte_socket_id(), &cfg);
	if (!lpm) {
		fprintf(stderr, "rte_lpm_create: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	rte_malloc_get_socket_stats(rte_socket_id(), &after);
	size_t bytes = after.heap_allocsz_bytes - before.heap_allocsz_bytes;

	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n_routes; i++) {
		int r = rte_lpm_add(lpm, routes[i].ip, routes[i].depth, routes[i].hop);
		if (r < 0) {
			fprintf(stderr, "rte_lpm_add %u/%u: %s\n", routes[i].ip,
				routes[i].depth, strerror(-r));
			return 1;
		}
	}
	double insert_ns = (double)(now_ns() - t0) / (double)(n_routes ? n_routes : 1);

	uint32_t *hops = malloc(n_look * sizeof(*hops));
	volatile uint32_t sink = 0;
	for (int round = 0; round < rounds; round++) {
		if (between) {
			fflush(stdout);
			if (system(between) != 0) {
				fprintf(stderr, "--between command failed\n");
				return 1;
			}
			fflush(stdout);
		}
		double bulk, x4, single;
		TIME_PER_ITEM(n_look, bulk, {
			for (size_t i = 0; i < n_look; i += BULK)
				rte_lpm_lookup_bulk(lpm, addrs + i, hops + i, BULK);
			sink += hops[n_look - 1];
		});
		size_t found = 0;
		for (size_t i = 0; i < n_look; i++)
			found += (hops[i] & RTE_LPM_LOOKUP_SUCCESS) != 0;
		if (answers && round == 0) {
			FILE *f = fopen(answers, "w");
			if (!f) {
				fprintf(stderr, "%s: %s\n", answers, strerror(errno));
				return 1;
			}
			for (size_t i = 0; i < n_look; i++) {
				if (hops[i] & RTE_LPM_LOOKUP_SUCCESS)
					fprintf(f, "%u\n", hops[i] & 0x00ffffff);
				else
					fputs("-\n", f);
			}
			fclose(f);
		}
		TIME_PER_ITEM(n_look, x4, {
			for (size_t i = 0; i < n_look; i += 4) {
				xmm_t ip = _mm_loadu_si128((const __m128i *)(addrs + i));
				rte_lpm_lookupx4(lpm, ip, hops + i, UINT32_MAX);
			}
			sink += hops[n_look - 1];
		});
		TIME_PER_ITEM(n_look, single, {
			uint32_t acc = 0;
			for (size_t i = 0; i < n_look; i++) {
				uint32_t nh = 0;
				if (rte_lpm_lookup(lpm, addrs[i], &nh) == 0)
					acc += nh;
			}
			sink += acc;
		});

		printf("{\"impl\": \"rte_lpm\", \"dpdk\": \"%s\", \"round\": %d, "
		       "\"routes\": %zu, \"skipped_default\": %zu, \"skipped\": %zu, "
		       "\"tbl8s\": %u, \"insert_ns_per_route\": %.1f, \"lookups\": %zu, "
		       "\"found\": %zu, \"ns_per_lookup\": %.2f, \"ns_per_lookup_x4\": %.2f, "
		       "\"ns_per_lookup_single\": %.2f, \"mlookups_per_s\": %.1f, "
		       "\"bytes\": %zu}\n",
		       rte_version(), round, n_routes, skipped_default, skipped, tbl8s,
		       insert_ns, n_look, found, bulk, x4, single, 1e3 / bulk, bytes);
	}
	(void)sink;
	free(hops);
	rte_lpm_free(lpm);
	rte_eal_cleanup();
	return 0;
}
