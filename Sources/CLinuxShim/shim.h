// Linux definitions Swift's Glibc module does not export: AF_PACKET addressing and options,
// Ethernet protocol numbers, classic BPF socket filters, setns for network namespaces, and malloc_trim.
#ifndef CLINUXSHIM_H
#define CLINUXSHIM_H
// No _GNU_SOURCE here: it changes glibc's struct layouts (fd_set's field names) and clang then rejects
// the same header seen by two modules; setns is declared by hand below and CLONE_NEWNET comes from
// <linux/sched.h> instead.
#include <sched.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <malloc.h>

// glibc declares setns only under _GNU_SOURCE; this is the same prototype (glibc >= 2.14).
int setns(int fd, int nstype);
#endif
