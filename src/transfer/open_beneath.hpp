// open_beneath() is declared in the public tree_ops.hpp (restore uses it too).
#pragma once

#include "coffer/transfer/tree_ops.hpp"
