#!/bin/sh
# The VM's init: set up a minimal system, run each step with its output on the second serial
# port (the kernel's own messages stay on the first), mark where each begins and ends, and
# power off. The host reads the marks; a step that never ends is a failure there.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run/netns /tmp /root
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns
ip link set lo up
stty -F /dev/ttyS1 raw -echo
exec </dev/null >/dev/ttyS1 2>&1
echo "{{.Mark}} kernel $(uname -r)"
if grep -q pinglab.probe /proc/cmdline; then
	echo "{{.Mark}} done"
	poweroff -f
fi
for m in {{.Preload}}; do
	modprobe "$m" || echo "{{.Mark}} modprobe $m failed"
done
{{range .Steps}}
echo "{{$.Mark}} begin {{.Name}}"
(cd {{.Dir}} && env {{.Env}} {{.Args}})
echo "{{$.Mark}} end {{.Name}} $?"
{{end}}
echo "{{.Mark}} done"
poweroff -f
