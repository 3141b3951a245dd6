#!/bin/sh
# Installed by Stackwright (common role); it never replaces an existing
# policy-rc.d.  While Stackwright installs packages (STACKWRIGHT_NO_START=1
# in apt's environment) a service new on the node is not started by its
# package: Stackwright starts it once it is configured, so it starts once,
# with the right settings, instead of starting with the package's defaults
# and being restarted.  A restart is a start for a service that does not
# run: libapache2-mod-wsgi-py3's postinst restarts apache2, which then ran
# with Debian's `Listen 80` on every address (and took the port HAProxy
# binds on the VIPs).  Restarts of running services, and every other
# caller (an operator's own apt runs), are allowed as usual.
#   policy-rc.d [--quiet] [--list] SERVICE "ACTION [FALLBACK...]" [RUNLEVEL]
[ -n "$STACKWRIGHT_NO_START" ] || exit 0
service=""
for arg in "$@"; do
    case "$arg" in
        --*) continue ;;
    esac
    if [ -z "$service" ]; then
        service=$arg
        continue
    fi
    for action in $arg; do
        case "$action" in
            start) exit 101 ;;
            restart) systemctl is-active --quiet "$service" || exit 101 ;;
        esac
    done
done
exit 0
