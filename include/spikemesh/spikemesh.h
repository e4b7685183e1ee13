/* spikemesh/spikemesh.h: the whole public interface of libspikemesh, one header per subsystem. */
#ifndef SPIKEMESH_H
#define SPIKEMESH_H

#include "spikemesh/common.h"
#include "spikemesh/core.h"
#include "spikemesh/router.h"
#include "spikemesh/loader.h"
#include "spikemesh/runtime.h"
#include "spikemesh/learn.h"

#endif
