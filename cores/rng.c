/* cores/rng.c: the counter-based random generator (Random123's Philox4x32-10) behind every random number in
 * spikemesh: connectivity, initial values, Poisson inputs and stochastic rounding. */
#include "spikemesh/common.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#endif
#include <Random123/philox.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

void sm_philox(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t counter, uint32_t out[4])
{
    philox4x32_ctr_t c = {{stream, a, b, counter}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t r = philox4x32_R(10, c, k);
    out[0] = r.v[0];
    out[1] = r.v[1];
    out[2] = r.v[2];
    out[3] = r.v[3];
}
