// hwledger: the operator CLI.
#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) { return hwl::cli::runCli(argc, argv, std::cout, std::cerr); }
