/* The hybrid logical clock of hlc.h. */
#include "crdt/hlc.h"

#include "base/assert.h"
#include "base/err.h"

void hlc_init(struct hlc *h) {
    h->last = 0;
}

uint64_t hlc_now(struct hlc *h, uint64_t wall_ms) {
    ASSERT(wall_ms < (1ull << (64 - HLC_LOGICAL_BITS)));
    uint64_t physical = hlc_from_wall_ms(wall_ms);
    /* HLC's send rule: l = max(l, pt); c = l unchanged ? c + 1 : 0, packed in one word. */
    uint64_t ts = physical > h->last ? physical : h->last + 1;
    ASSERT(ts > h->last);
    h->last = ts;
    return ts;
}

int hlc_observe(struct hlc *h, uint64_t remote, uint64_t wall_ms, uint64_t max_offset_ms) {
    if (hlc_wall_ms(remote) > wall_ms + max_offset_ms) return ERR_LIMIT;
    /* HLC's receive rule: the next local event is after both (hlc_now adds the 1). */
    if (remote > h->last) h->last = remote;
    return 0;
}
