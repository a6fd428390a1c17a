// Filter is public (coffer/transfer/filter.hpp): restore selects with the backup's patterns.
#pragma once

#include "coffer/transfer/filter.hpp"
