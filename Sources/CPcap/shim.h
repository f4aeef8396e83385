// libpcap, for pcap_open_dead + pcap_compile only: no capture handles are ever opened.
#ifndef CPCAP_H
#define CPCAP_H
#include <pcap/pcap.h>
#endif
