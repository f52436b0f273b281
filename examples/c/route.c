/* examples/c/route.c: longest-prefix match with libhtb's FIB.
 *
 * Loads a route file (lines `PREFIX[/LEN] VALUE [METRIC]` and/or the output
 * of `ip route show` / `ip -6 route show`, mixed) and looks up each address
 * given, printing what `ip route get fibmatch` would match:
 *
 *   ./route ROUTES ADDRESS...
 *   10.1.2.3 10.1.0.0/16 lab metric 10
 *   10.66.0.1 10.66.0.0/16 blackhole metric 0
 *   203.0.113.9 - -                      (no route)
 *
 * The IPv4 addresses are also looked up again in one batch call, the fast
 * path for many addresses, and the two answers compared. Build (from the
 * workspace root, after `cargo build --release -p htb-ffi`):
 *
 *   cc -std=c11 -O2 -I include examples/c/route.c target/release/libhtb.a \
 *      -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o route
 *   ./route examples/c/routes.txt 10.1.2.3 2001:db8:1::5
 *
 * or, once installed: cc examples/c/route.c $(pkg-config --cflags --libs htb)
 */

#include "htb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what) {
  char msg[512];
  size_t n = 0;
  htb_last_error(msg, sizeof msg, &n);
  fprintf(stderr, "route: %s: %s\n", what, msg);
  exit(1);
}

/* Prints one answer: `PREFIX VALUE metric N`, or `- -`. */
static void print_route(const htb_fib *fib, const char *addr, htb_status st,
                        const htb_route *r) {
  char prefix[64];
  char value[128];
  size_t n = 0;
  if (st == HTB_STATUS_NOT_FOUND) {
    printf("%s - -\n", addr);
    return;
  }
  if (st != HTB_STATUS_OK) {
    die(addr);
  }
  if (htb_prefix_format(&r->prefix, prefix, sizeof prefix, &n) != HTB_STATUS_OK) {
    die("htb_prefix_format");
  }
  switch (r->kind) {
  case HTB_ROUTE_KIND_UNICAST:
    /* Loaded without a value callback: the value numbers the VALUE word. */
    if (htb_fib_name(fib, r->value, value, sizeof value, &n) != HTB_STATUS_OK) {
      snprintf(value, sizeof value, "%llu", (unsigned long long)r->value);
    }
    break;
  case HTB_ROUTE_KIND_BLACKHOLE:
    strcpy(value, "blackhole");
    break;
  case HTB_ROUTE_KIND_UNREACHABLE:
    strcpy(value, "unreachable");
    break;
  default:
    strcpy(value, "prohibit");
    break;
  }
  printf("%s %s %s metric %u\n", addr, prefix, value, (unsigned)r->metric);
}

int main(int argc, char **argv) {
  htb_fib *fib = NULL;
  size_t added = 0;
  size_t n4 = 0;
  size_t n6 = 0;
  uint8_t *batch_addrs;
  htb_route *batch_out;
  int *batch_arg;
  size_t batch_n = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: route ROUTES [ADDRESS...]\n");
    return 2;
  }
  if (htb_fib_new(&fib) != HTB_STATUS_OK) {
    die("htb_fib_new");
  }
  if (htb_fib_load_file(fib, argv[1], NULL, NULL, &added) != HTB_STATUS_OK) {
    die("htb_fib_load_file");
  }
  htb_fib_count(fib, HTB_FAMILY_IPV4, &n4);
  htb_fib_count(fib, HTB_FAMILY_IPV6, &n6);
  printf("# %s: %zu routes (%zu IPv4, %zu IPv6)\n", argv[1], added, n4, n6);

  batch_addrs = (uint8_t *)malloc((size_t)argc * 4);
  batch_out = (htb_route *)malloc((size_t)argc * sizeof *batch_out);
  batch_arg = (int *)malloc((size_t)argc * sizeof *batch_arg);
  if (batch_addrs == NULL || batch_out == NULL || batch_arg == NULL) {
    perror("malloc");
    return 1;
  }

  for (int i = 2; i < argc; i++) {
    htb_prefix a;
    htb_route r;
    htb_status st;
    size_t len;
    /* A bare address parses as a host prefix; a /LEN is not an address. */
    if (strchr(argv[i], '/') != NULL ||
        htb_prefix_parse(argv[i], strlen(argv[i]), &a) != HTB_STATUS_OK) {
      fprintf(stderr, "route: %s: not an IPv4 or IPv6 address\n", argv[i]);
      htb_fib_free(fib);
      free(batch_addrs);
      free(batch_out);
      free(batch_arg);
      return 1;
    }
    len = a.family == HTB_FAMILY_IPV4 ? 4 : 16;
    st = htb_fib_lookup(fib, a.addr, len, &r);
    print_route(fib, argv[i], st, &r);
    if (len == 4) {
      memcpy(&batch_addrs[batch_n * 4], a.addr, 4);
      batch_arg[batch_n++] = i;
    }
  }

  /* The batch answer for the IPv4 addresses is the same, slot by slot
   * (HTB_ROUTE_KIND_NONE where nothing matched). */
  if (htb_fib_lookup_batch(fib, batch_addrs, 4, batch_n, batch_out, batch_n) !=
      HTB_STATUS_OK) {
    die("htb_fib_lookup_batch");
  }
  for (size_t k = 0; k < batch_n; k++) {
    htb_prefix a;
    htb_route r;
    const char *text = argv[batch_arg[k]];
    htb_prefix_parse(text, strlen(text), &a);
    if (htb_fib_lookup(fib, a.addr, 4, &r) == HTB_STATUS_OK
            ? memcmp(&r, &batch_out[k], sizeof r) != 0
            : batch_out[k].kind != HTB_ROUTE_KIND_NONE) {
      fprintf(stderr, "route: batch and single lookups differ for %s\n", text);
      return 1;
    }
  }
  printf("# batch lookup of %zu IPv4 addresses agrees\n", batch_n);

  free(batch_addrs);
  free(batch_out);
  free(batch_arg);
  htb_fib_free(fib);
  return 0;
}
