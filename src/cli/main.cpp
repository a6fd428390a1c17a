#include "app.hpp"

int main(int argc, char** argv) { return coffer::cli::run(argc, argv); }
