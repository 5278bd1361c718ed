// Router is a header-only template; this file keeps one translation unit per header.
#include "api/router.h"
