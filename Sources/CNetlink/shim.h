// libnl-3 and libnl-route-3: the cache manager and rtnl_link accessors.
#ifndef CNETLINK_H
#define CNETLINK_H
#include <netlink/netlink.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#endif
