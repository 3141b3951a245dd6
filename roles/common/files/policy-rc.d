#!/bin/sh
# Installed by Stackwright (common role); it never replaces an existing
# policy-rc.d.  While Stackwright installs packages (STACKWRIGHT_NO_START=1
# in apt's environment) a service new on the node is not started by its
# package: Stackwright starts it once it is configured, so it starts once,
# with the right settings, instead of starting with the package's defaults
# and being restarted.  Restarts of upgraded services, and every other
# caller (an operator's own apt runs), are allowed as usual.
[ -n "$STACKWRIGHT_NO_START" ] || exit 0
for arg in "$@"; do
    case "$arg" in
        start) exit 101 ;;
    esac
done
exit 0
