/* examples/c/reasm.c: fragment and reassemble IP datagrams with libhtb.
 *
 * Builds an IPv4 UDP datagram of SIZE bytes, fragments it for MTU as Linux
 * would (htb_fragment into one buffer), delivers the fragments to a
 * reassembler in reverse order, and checks that the datagram comes back
 * byte for byte. Then it leaves a second datagram incomplete (its offset-0
 * fragment only) and lets it time out on the virtual clock: the event says
 * that Linux would send ICMP Time Exceeded, quoting the first fragment.
 *
 *   ./reasm [SIZE] [MTU]        (defaults: 4000 bytes, MTU 1500)
 *
 * Build (from the workspace root, after `cargo build --release -p htb-ffi`):
 *
 *   cc -std=c11 -O2 -I include examples/c/reasm.c target/release/libhtb.a \
 *      -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o reasm
 *
 * or, once installed: cc examples/c/reasm.c $(pkg-config --cflags --libs htb)
 */

#include "htb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_SEC 1000000000ull
#define MAX_FRAGS 64

static void die(const char *what, htb_status st) {
  char msg[512];
  size_t n = 0;
  htb_last_error(msg, sizeof msg, &n);
  fprintf(stderr, "reasm: %s: %s (%s)\n", what, htb_status_str(st), msg);
  exit(1);
}

/* Stores the header checksum of the 20-byte IPv4 header at `p`. */
static void set_checksum(uint8_t *p) {
  uint32_t sum = 0;
  p[10] = p[11] = 0;
  for (int i = 0; i < 20; i += 2) {
    sum += (uint32_t)((p[i] << 8) | p[i + 1]);
  }
  while (sum > 0xffff) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  p[10] = (uint8_t)(~sum >> 8);
  p[11] = (uint8_t)~sum;
}

/* A 20-byte IPv4 header (192.0.2.1 -> 198.51.100.2, UDP) with its
 * checksum, then `size - 20` bytes of pattern. */
static void build_datagram(uint8_t *p, size_t size, uint16_t id) {
  memset(p, 0, 20);
  p[0] = 0x45;
  p[2] = (uint8_t)(size >> 8);
  p[3] = (uint8_t)size;
  p[4] = (uint8_t)(id >> 8);
  p[5] = (uint8_t)id;
  p[8] = 64;
  p[9] = 17;
  p[12] = 192, p[13] = 0, p[14] = 2, p[15] = 1;
  p[16] = 198, p[17] = 51, p[18] = 100, p[19] = 2;
  set_checksum(p);
  for (size_t i = 20; i < size; i++) {
    p[i] = (uint8_t)(i * 7u);
  }
}

static void on_event(void *user, const htb_reasm_event *ev) {
  (void)user;
  printf("expired: %u.%u.%u.%u -> %u.%u.%u.%u id %u: %s", ev->src[0],
         ev->src[1], ev->src[2], ev->src[3], ev->dst[0], ev->dst[1], ev->dst[2],
         ev->dst[3], (unsigned)ev->id,
         ev->send_icmp ? "send ICMP time exceeded, quoting" : "no ICMP");
  for (size_t i = 0; i < ev->quote_len; i++) {
    printf("%s%02x", i % 4 == 0 ? " " : "", ev->quote[i]);
  }
  printf("\n");
}

int main(int argc, char **argv) {
  size_t size = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 4000;
  size_t mtu = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1500;
  htb_frag_options opts;
  htb_frag_result fr;
  htb_reasm_result res;
  htb_reasm_stats stats;
  htb_reasm *r = NULL;
  size_t lens[MAX_FRAGS];
  size_t starts[MAX_FRAGS];
  size_t events = 0;
  uint8_t *dgram, *frags, *out;
  htb_status st;

  if (size < 28 || size > 65535) {
    fprintf(stderr, "reasm: SIZE must be 28..65535\n");
    return 2;
  }
  dgram = (uint8_t *)malloc(size);
  out = (uint8_t *)malloc(65535);
  if (dgram == NULL || out == NULL) {
    perror("malloc");
    return 1;
  }
  build_datagram(dgram, size, 0x4242);

  /* Ask for the sizes first, then fragment into one buffer. */
  memset(&opts, 0, sizeof opts);
  opts.mtu = mtu;
  st = htb_fragment(dgram, size, &opts, NULL, 0, NULL, 0, &fr);
  if (st != HTB_STATUS_BUFFER_TOO_SMALL) {
    die("htb_fragment (sizing)", st);
  }
  if (fr.count > MAX_FRAGS) {
    fprintf(stderr, "reasm: %zu fragments, at most %d here\n", fr.count,
            MAX_FRAGS);
    return 1;
  }
  frags = (uint8_t *)malloc(fr.bytes);
  if (frags == NULL) {
    perror("malloc");
    return 1;
  }
  st = htb_fragment(dgram, size, &opts, frags, fr.bytes, lens, MAX_FRAGS, &fr);
  if (st != HTB_STATUS_OK) {
    die("htb_fragment", st);
  }
  printf("%zu-byte datagram, MTU %zu: %zu fragments, %zu bytes:", size, mtu,
         fr.count, fr.bytes);
  for (size_t i = 0, off = 0; i < fr.count; off += lens[i], i++) {
    starts[i] = off;
    printf(" %zu", lens[i]);
  }
  printf("\n");

  /* Reassemble, last fragment first. */
  if ((st = htb_reasm_new(NULL, &r)) != HTB_STATUS_OK) {
    die("htb_reasm_new", st);
  }
  for (size_t k = fr.count; k-- > 0;) {
    st = htb_reasm_push(r, frags + starts[k], lens[k], 0, 0, &res, out, 65535);
    if (st != HTB_STATUS_OK) {
      die("htb_reasm_push", st);
    }
  }
  if (fr.count == 1 && res.outcome == HTB_REASM_OUTCOME_NOT_FRAGMENT &&
      memcmp(frags, dgram, size) == 0) {
    /* It fit the MTU: sent unchanged, and not a fragment to reassemble. */
    printf("fits the MTU: passed on as it is\n");
  } else if (res.outcome == HTB_REASM_OUTCOME_COMPLETE && res.len == size &&
             memcmp(out, dgram, size) == 0) {
    printf("reassembled in reverse order: %zu bytes, identical\n", res.len);
  } else {
    fprintf(stderr, "reasm: the datagram did not come back intact\n");
    return 1;
  }

  /* A datagram whose later fragments never come: only its first arrives. */
  if (fr.count > 1) {
    frags[5] ^= 1; /* another id: a queue of its own */
    set_checksum(frags);
    st = htb_reasm_push(r, frags, lens[0], 0, 1 * NS_PER_SEC, &res, out, 65535);
    if (st != HTB_STATUS_OK || res.outcome != HTB_REASM_OUTCOME_QUEUED) {
      die("htb_reasm_push (incomplete)", st);
    }
    st = htb_reasm_expire(r, 40 * NS_PER_SEC, on_event, NULL, &events);
    if (st != HTB_STATUS_OK || events != 1) {
      die("htb_reasm_expire", st);
    }
  }
  htb_reasm_get_stats(r, HTB_FAMILY_IPV4, &stats);
  printf("ReasmReqds %llu ReasmOKs %llu ReasmFails %llu ReasmTimeout %llu\n",
         (unsigned long long)stats.reasm_reqds,
         (unsigned long long)stats.reasm_oks,
         (unsigned long long)stats.reasm_fails,
         (unsigned long long)stats.reasm_timeout);

  htb_reasm_free(r);
  free(frags);
  free(out);
  free(dgram);
  return 0;
}
