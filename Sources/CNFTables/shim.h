// libnftables: the speaker runs its nft scripts in-process (nft_run_cmd_from_buffer), one transaction each.
#ifndef CNFTABLES_H
#define CNFTABLES_H
#include <nftables/libnftables.h>
#endif
