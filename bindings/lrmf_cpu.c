#include "../csrc/cpu/lrmf_cpu.c"
