/*
 * Peer benchmark: DPDK librte_ip_frag IPv4 reassembly and fragmentation cost
 * per fragment, for side-by-side comparison with the htb crate's `reasm` and
 * `frag` modules (criterion bench `reasm`, `htb bench reasm|frag`).  Written
 * for this project against the public rte_ip_frag.h API (DPDK 22.11); not
 * part of CI.
 *
 * Workloads (the same as the Rust benches):
 *  - reassembly: IPv4/UDP datagrams of --sizes bytes (DF clear) cut for
 *    --mtu (payload (mtu - 20) & ~7 per fragment, as Linux and DPDK cut);
 *    --interleave N sends N datagrams' fragments round-robin (the first
 *    fragments of all N, then the second ones, ...), each of the N from its
 *    own source address.  Fragments are copied into fresh mbufs before each
 *    batch (untimed); the timed region is only the
 *    rte_ipv4_frag_reassemble_packet() calls of the batch.  The arrival
 *    timestamp is one rte_rdtsc() per batch (applications read it once per
 *    burst).  Completed chains and the death row are freed untimed.
 *  - fragmentation: one datagram of --sizes bytes in one mbuf, cut for --mtu
 *    by rte_ipv4_fragment_copy_nonseg_packet() (copies, like htb's
 *    Fragmenter::next_into) and rte_ipv4_fragment_packet() (zero copy: a
 *    direct header mbuf plus an indirect mbuf on the input's data per
 *    fragment).  Only the calls are timed, a batch of datagrams at a time;
 *    the fragments are freed untimed.
 *
 * Output: one JSON object per line and configuration (median and min wall
 * ns per fragment over --repeats runs, and the median thread-CPU ns: on a
 * shared VM the wall figure includes other tenants' time slices).
 *
 * usage: rte_ip_frag_bench [EAL args] -- [--sizes 4000,8000] [--mtu 1500]
 *        [--interleave 1,256] [--datagrams N] [--repeats R]
 *        [--ops reassemble,frag_copy,frag_zerocopy]
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_version.h>

#include "peer_common.h"

#define MAX_FRAGS 64
/* Datagrams per batch (rounded to a multiple of the interleave). */
#define BATCH 1024
#define MAX_LIST 8

/* The Rust benches' datagram (htb-cli bench.rs udp_datagram): 10.x.y.z ->
 * 192.0.2.1, UDP 4000 -> 9, TTL 64, DF clear, payload pattern. */
static void build_datagram(uint8_t *p, uint32_t size, uint32_t src, uint16_t id)
{
	memset(p, 0, size);
	p[0] = 0x45;
	p[2] = (uint8_t)(size >> 8);
	p[3] = (uint8_t)size;
	p[4] = (uint8_t)(id >> 8);
	p[5] = (uint8_t)id;
	p[8] = 64;
	p[9] = 17;
	p[12] = 10;
	p[13] = (uint8_t)(src >> 16);
	p[14] = (uint8_t)(src >> 8);
	p[15] = (uint8_t)src;
	p[16] = 192;
	p[17] = 0;
	p[18] = 2;
	p[19] = 1;
	struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)p;
	h->hdr_checksum = 0;
	h->hdr_checksum = rte_ipv4_cksum(h);
	p[20] = 4000 >> 8;
	p[21] = 4000 & 0xff;
	p[23] = 9;
	p[24] = (uint8_t)((size - 20) >> 8);
	p[25] = (uint8_t)(size - 20);
	for (uint32_t i = 0; i < size - 28; i++)
		p[28 + i] = (uint8_t)(i * 31u + src);
}

/* Cuts a datagram as Linux does: (mtu - 20) & ~7 data bytes per fragment.
 * Returns the number of fragments; frag[k] / len[k] point into `store`. */
static uint32_t cut(const uint8_t *d, uint32_t size, uint32_t mtu, uint8_t *store,
		    uint8_t **frag, uint32_t *len)
{
	uint32_t per = (mtu - 20) & ~7u, data = size - 20, n = 0;
	for (uint32_t off = 0; off < data; off += per, n++) {
		uint32_t chunk = RTE_MIN(per, data - off);
		uint8_t *f = store + (size_t)n * (mtu + 8);
		memcpy(f, d, 20);
		memcpy(f + 20, d + 20 + off, chunk);
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)f;
		h->total_length = rte_cpu_to_be_16((uint16_t)(20 + chunk));
		uint16_t fo = (uint16_t)(off / 8);
		if (off + chunk < data)
			fo |= RTE_IPV4_HDR_MF_FLAG;
		h->fragment_offset = rte_cpu_to_be_16(fo);
		h->hdr_checksum = 0;
		h->hdr_checksum = rte_ipv4_cksum(h);
		frag[n] = f;
		len[n] = 20 + chunk;
	}
	return n;
}

struct result {
	double ns_per_frag;
	double cpu_ns_per_frag;
	uint64_t fragments;
	uint64_t completed;
	uint32_t per_datagram;
};

static int run_reassemble(struct rte_mempool *pool, uint32_t size, uint32_t mtu,
			  uint32_t interleave, uint64_t datagrams, struct result *res)
{
	uint32_t batch = RTE_MAX(interleave, BATCH / interleave * interleave);
	uint8_t *dgram = malloc(size);
	uint8_t *store = malloc((size_t)batch * MAX_FRAGS * (mtu + 8));
	uint8_t **frag = malloc(sizeof(uint8_t *) * batch * MAX_FRAGS);
	uint32_t *len = malloc(sizeof(uint32_t) * batch * MAX_FRAGS);
	uint32_t per = 0;
	/* Pre-cut one batch: datagram i of the batch is number i of its round. */
	for (uint32_t i = 0; i < batch; i++) {
		build_datagram(dgram, size, i % interleave, (uint16_t)i);
		per = cut(dgram, size, mtu, store + (size_t)i * MAX_FRAGS * (mtu + 8),
			  &frag[(size_t)i * MAX_FRAGS], &len[(size_t)i * MAX_FRAGS]);
	}
	/* Push order: per round of `interleave` datagrams, fragment k of each. */
	uint32_t n_push = batch * per;
	uint32_t *order = malloc(sizeof(uint32_t) * n_push);
	uint32_t o = 0;
	for (uint32_t r = 0; r < batch / interleave; r++)
		for (uint32_t k = 0; k < per; k++)
			for (uint32_t i = 0; i < interleave; i++)
				order[o++] = (r * interleave + i) * MAX_FRAGS + k;

	uint64_t hz = rte_get_tsc_hz();
	struct rte_ip_frag_tbl *tbl =
		rte_ip_frag_table_create(4096, 16, 4096 * 16, hz * 30, (int)rte_socket_id());
	struct rte_ip_frag_death_row dr = {.cnt = 0};
	struct rte_mbuf **mbufs = malloc(sizeof(*mbufs) * n_push);
	struct rte_mbuf **done = malloc(sizeof(*done) * batch);
	if (!tbl || !dgram || !store || !frag || !len || !order || !mbufs || !done) {
		fprintf(stderr, "allocation failed\n");
		return -1;
	}
	double timed = 0, cpu = 0;
	uint64_t completed = 0, pushed = 0;
	uint64_t batches = (datagrams + batch - 1) / batch;
	for (uint64_t b = 0; b <= batches; b++) { /* batch 0: untimed warm-up */
		if (rte_pktmbuf_alloc_bulk(pool, mbufs, n_push) != 0) {
			fprintf(stderr, "mbuf allocation of %u failed\n", n_push);
			return -1;
		}
		for (uint32_t j = 0; j < n_push; j++) {
			struct rte_mbuf *m = mbufs[j];
			uint32_t f = order[j];
			memcpy(rte_pktmbuf_mtod(m, void *), frag[f], len[f]);
			m->data_len = (uint16_t)len[f];
			m->pkt_len = len[f];
			m->l2_len = 0;
			m->l3_len = 20;
		}
		uint32_t n_done = 0;
		uint64_t tms = rte_rdtsc();
		double c0 = cpu_ns(), t0 = now_ns();
		for (uint32_t j = 0; j < n_push; j++) {
			struct rte_mbuf *m = mbufs[j];
			struct rte_mbuf *r = rte_ipv4_frag_reassemble_packet(
				tbl, &dr, m, tms, rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *));
			if (r != NULL)
				done[n_done++] = r;
		}
		double t1 = now_ns(), c1 = cpu_ns();
		if (b > 0) {
			timed += t1 - t0;
			cpu += c1 - c0;
			completed += n_done;
			pushed += n_push;
		}
		for (uint32_t j = 0; j < n_done; j++)
			rte_pktmbuf_free(done[j]);
		rte_ip_frag_free_death_row(&dr, 3);
	}
	rte_ip_frag_table_destroy(tbl);
	free(dgram);
	free(store);
	free(frag);
	free(len);
	free(order);
	free(mbufs);
	free(done);
	res->ns_per_frag = timed / (double)pushed;
	res->cpu_ns_per_frag = cpu / (double)pushed;
	res->fragments = pushed;
	res->completed = completed;
	res->per_datagram = per;
	return 0;
}

static int run_fragment(struct rte_mempool *big, struct rte_mempool *direct,
			struct rte_mempool *indirect, bool zerocopy, uint32_t size, uint32_t mtu,
			uint64_t datagrams, struct result *res)
{
	struct rte_mbuf *in = rte_pktmbuf_alloc(big);
	if (in == NULL || rte_pktmbuf_tailroom(in) < size) {
		fprintf(stderr, "input mbuf too small for %u bytes\n", size);
		return -1;
	}
	build_datagram(rte_pktmbuf_mtod(in, uint8_t *), size, 1, 1);
	in->data_len = (uint16_t)size;
	in->pkt_len = size;
	in->l2_len = 0;
	in->l3_len = 20;
	/* Datagrams per timed batch: small, so that the fragments' mbufs come
	 * from and return to the lcore's mempool cache (256) as in a
	 * forwarding loop, not from the shared ring. */
	enum { FB = 16 };
	static struct rte_mbuf *out[FB * MAX_FRAGS];
	double timed = 0, cpu = 0;
	uint64_t frags = 0;
	uint64_t batches = (datagrams + FB - 1) / FB;
	uint32_t per = 0;
	for (uint64_t b = 0; b <= batches; b++) {
		uint32_t n_out = 0;
		double c0 = cpu_ns(), t0 = now_ns();
		for (uint32_t i = 0; i < FB; i++) {
			int32_t n = zerocopy
				? rte_ipv4_fragment_packet(in, &out[n_out], MAX_FRAGS, (uint16_t)mtu,
							   direct, indirect)
				: rte_ipv4_fragment_copy_nonseg_packet(in, &out[n_out], MAX_FRAGS,
								       (uint16_t)mtu, direct);
			if (n < 0) {
				fprintf(stderr, "fragmentation failed: %d\n", n);
				return -1;
			}
			per = (uint32_t)n;
			n_out += (uint32_t)n;
		}
		double t1 = now_ns(), c1 = cpu_ns();
		if (b > 0) {
			timed += t1 - t0;
			cpu += c1 - c0;
			frags += n_out;
		}
		rte_pktmbuf_free_bulk(out, n_out);
	}
	rte_pktmbuf_free(in);
	res->ns_per_frag = timed / (double)frags;
	res->cpu_ns_per_frag = cpu / (double)frags;
	res->fragments = frags;
	res->completed = batches * FB;
	res->per_datagram = per;
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

static void report(const char *op, uint32_t size, uint32_t mtu, uint32_t interleave,
		   struct result *runs, int ok)
{
	double ns[32], raw[32], cpu[32];
	for (int r = 0; r < ok; r++) {
		ns[r] = raw[r] = runs[r].ns_per_frag;
		cpu[r] = runs[r].cpu_ns_per_frag;
	}
	qsort(ns, (size_t)ok, sizeof(double), cmp_double);
	qsort(cpu, (size_t)ok, sizeof(double), cmp_double);
	printf("{\"peer\":\"rte_ip_frag\",\"dpdk\":\"%s\",\"op\":\"%s\",\"datagram_size\":%u,"
	       "\"mtu\":%u,\"interleave\":%u,\"fragments_per_datagram\":%u,"
	       "\"fragments_per_run\":%" PRIu64 ",\"datagrams_completed_per_run\":%" PRIu64
	       ",\"runs\":%d,\"ns_per_fragment_median\":%.2f,\"ns_per_fragment_min\":%.2f,"
	       "\"cpu_ns_per_fragment_median\":%.2f,\"mfragments_per_s_median\":%.3f,"
	       "\"ns_per_fragment_runs\":[",
	       rte_version(), op, size, mtu, interleave, runs[0].per_datagram,
	       runs[0].fragments, runs[0].completed, ok, ns[ok / 2], ns[0], cpu[ok / 2],
	       1e3 / ns[ok / 2]);
	for (int r = 0; r < ok; r++)
		printf("%s%.2f", r ? "," : "", raw[r]);
	printf("]}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	peer_eal_init(&argc, &argv);

	uint32_t sizes[MAX_LIST] = {4000, 8000}, inter[MAX_LIST] = {1, 256};
	int n_sizes = 2, n_inter = 2, repeats = 5;
	uint32_t mtu = 1500;
	uint64_t datagrams = 200000;
	bool do_reasm = true, do_copy = true, do_zc = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
			n_sizes = parse_list(argv[++i], sizes, MAX_LIST);
		else if (!strcmp(argv[i], "--interleave") && i + 1 < argc)
			n_inter = parse_list(argv[++i], inter, MAX_LIST);
		else if (!strcmp(argv[i], "--mtu") && i + 1 < argc)
			mtu = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--datagrams") && i + 1 < argc)
			datagrams = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
			repeats = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
			const char *v = argv[++i];
			do_reasm = strstr(v, "reassemble") != NULL;
			do_copy = strstr(v, "frag_copy") != NULL;
			do_zc = strstr(v, "frag_zerocopy") != NULL;
		} else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (repeats < 1 || repeats > 32)
		repeats = 5;
	if (mtu < 68 || mtu > 9000) {
		fprintf(stderr, "mtu must be 68..9000\n");
		return 2;
	}
	for (int i = 0; i < n_sizes; i++)
		if (sizes[i] < 28 || sizes[i] > 9000 || (sizes[i] - 20 + ((mtu - 20) & ~7u) - 1) /
				((mtu - 20) & ~7u) > RTE_LIBRTE_IP_FRAG_MAX_FRAG) {
			fprintf(stderr,
				"size %u: must be 28..9000 and need at most %d fragments "
				"(RTE_LIBRTE_IP_FRAG_MAX_FRAG) at MTU %u\n",
				sizes[i], RTE_LIBRTE_IP_FRAG_MAX_FRAG, mtu);
			return 2;
		}
	for (int i = 0; i < n_inter; i++)
		if (inter[i] < 1 || inter[i] > BATCH) {
			fprintf(stderr, "interleave must be 1..%d\n", BATCH);
			return 2;
		}

	/* Data room: a fragment (<= mtu) in the default pool; a whole datagram
	 * (<= 9000) in the big one for the fragmentation input. */
	uint32_t n_mbufs = BATCH * RTE_LIBRTE_IP_FRAG_MAX_FRAG + 4096;
	struct rte_mempool *pool = rte_pktmbuf_pool_create(
		"frag_pool", RTE_MAX(n_mbufs, 256u * MAX_FRAGS + 1024), 256, 0,
		RTE_MAX((uint32_t)RTE_MBUF_DEFAULT_BUF_SIZE, mtu + RTE_PKTMBUF_HEADROOM + 64),
		(int)rte_socket_id());
	struct rte_mempool *indirect = rte_pktmbuf_pool_create(
		"frag_indirect", 16 * MAX_FRAGS + 1024, 256, 0, 0, (int)rte_socket_id());
	struct rte_mempool *big = rte_pktmbuf_pool_create(
		"frag_big", 64, 0, 0, 9216 + RTE_PKTMBUF_HEADROOM, (int)rte_socket_id());
	if (pool == NULL || indirect == NULL || big == NULL) {
		fprintf(stderr, "mempool: %s\n", rte_strerror(rte_errno));
		return 1;
	}

	struct result runs[32];
	for (int s = 0; s < n_sizes && do_reasm; s++)
		for (int i = 0; i < n_inter; i++) {
			int ok = 0;
			for (int r = 0; r < repeats; r++)
				if (run_reassemble(pool, sizes[s], mtu, inter[i], datagrams, &runs[ok]) == 0)
					ok++;
			if (ok == 0)
				return 1;
			report("reassemble", sizes[s], mtu, inter[i], runs, ok);
		}
	for (int z = 0; z < 2; z++) {
		bool zc = z == 1;
		if ((zc && !do_zc) || (!zc && !do_copy))
			continue;
		for (int s = 0; s < n_sizes; s++) {
			int ok = 0;
			for (int r = 0; r < repeats; r++)
				if (run_fragment(big, pool, indirect, zc, sizes[s], mtu, datagrams * 5,
						 &runs[ok]) == 0)
					ok++;
			if (ok == 0)
				return 1;
			report(zc ? "fragment_zerocopy" : "fragment_copy", sizes[s], mtu, 1, runs, ok);
		}
	}

	rte_mempool_free(big);
	rte_mempool_free(indirect);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return 0;
}
