// libpcap: filter compilation for the speaker (pcap_open_dead + pcap_compile), captures for the lab probe.
#ifndef CPCAP_H
#define CPCAP_H
#include <pcap/pcap.h>
#endif
