#!/usr/bin/env bash
# Capture, read-only, what sglfleet's roles read on a real GPU node, into DEST (one file a probe,
# plus COMMANDS.txt naming the command behind each file and the date). Run as root on the node:
#   bash tools/capture_metal.sh DEST
# The files land in tests/fixtures/metal/<machine>/ and the role decisions are tested against them.
set -uo pipefail
dest=${1:?usage: capture_metal.sh DEST}
mkdir -p "$dest"
log="$dest/COMMANDS.txt"
{
  echo "# captured $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) by tools/capture_metal.sh"
  echo "# file <- command (rc)"
} >"$log"

cap() { # cap FILE COMMAND...: run COMMAND, keep stdout (and stderr when it fails) in FILE
  local file=$1
  shift
  "$@" >"$dest/$file" 2>"$dest/$file.err"
  local rc=$?
  [ -s "$dest/$file.err" ] || rm -f "$dest/$file.err"
  echo "$file <- $* (rc $rc)" >>"$log"
}
capsh() { # capsh FILE 'SHELL LINE'
  local file=$1
  cap "$file" bash -c "$2"
}

cap os-release cat /etc/os-release
cap uname uname -a
cap proc-cmdline cat /proc/cmdline
cap proc-devices cat /proc/devices
cap proc-modules cat /proc/modules
capsh sys-module-versions 'for d in /sys/module/*; do [ -r "$d/version" ] && echo "$(basename "$d") $(cat "$d/version")"; done'
capsh sys-module-list 'ls -1 /sys/module'
cap proc-driver-nvidia-version cat /proc/driver/nvidia/version
capsh proc-driver-nvidia-params 'cat /proc/driver/nvidia/params'
cap nvidia-smi-q.xml nvidia-smi -q -x
cap nvidia-smi-L nvidia-smi -L
cap nvidia-smi-topo nvidia-smi topo -m
cap nvidia-smi-nvlink-s nvidia-smi nvlink -s
# Peer memory (MLNX_OFED/DOCA ib_core) against DMA-BUF (inbox ib_core, kernel >= 5.12) evidence.
capsh kallsyms-rdma-gpu 'grep -E " (ib_register_peer_memory_client|ib_unregister_peer_memory_client|ib_umem_dmabuf_get|ib_umem_dmabuf_get_pinned|dma_buf_dynamic_attach|dma_buf_export|nvidia_p2p_get_pages|nvidia_p2p_dma_map_pages)([[:space:]]|$)" /proc/kallsyms | sed -E "s/^[0-9a-f]+ /0000000000000000 /" | sort -u'
capsh dev-nodes 'ls -ln /dev/nvidia* /dev/nvidia-caps /dev/nvidia-caps-imex-channels /dev/infiniband /dev/dri 2>&1'
capsh sys-class-misc 'for d in /sys/class/misc/*; do echo "$(basename "$d") $(cat "$d/dev" 2>/dev/null)"; done'
capsh sys-class-infiniband 'ls -la /sys/class/infiniband /sys/class/infiniband_verbs 2>&1'
capsh pci-devices 'for d in /sys/bus/pci/devices/*; do echo "$(basename "$d") $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"; done'
cap dpkg-l dpkg -l
capsh dpkg-query-nvidia 'dpkg-query -W -f "\${Package}\t\${Version}\t\${Status}\n" "*nvidia*" "*cuda*" "linux-headers*" "linux-image*" "dkms" "rdma-core" "ibverbs*" "datacenter-gpu-manager*" 2>&1'
capsh pid1 'echo "comm=$(cat /proc/1/comm)"; echo "exe=$(readlink /proc/1/exe)"; ls -l /sbin/init 2>&1; ls -d /run/systemd/system 2>&1; command -v systemctl journalctl modprobe lsmod dkms update-grub mokutil lspci 2>&1'
capsh driver-origin 'command -v nvidia-smi; readlink -f "$(command -v nvidia-smi)"; dpkg -S "$(readlink -f "$(command -v nvidia-smi)")" 2>&1; ls -la /usr/local/nvidia 2>&1; ls /usr/local/nvidia/* 2>&1 | head -80; findmnt -T /usr/local/nvidia 2>&1; ls /var/lib/dkms /usr/src 2>&1; ls -la /usr/bin/nvidia-installer /var/log/nvidia-installer.log 2>&1; ls /lib/modules/"$(uname -r)" 2>&1 | head'
capsh secure-boot 'ls /sys/firmware/efi 2>&1; od -An -t u1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c 2>&1; cat /sys/kernel/security/lockdown 2>&1; cat /proc/sys/kernel/tainted'
capsh persistenced 'for p in /proc/[0-9]*; do c=$(cat $p/comm 2>/dev/null); [ "$c" = nvidia-persiste ] && echo "$(basename $p) $c $(stat -c %U $p)"; done; ls -la /var/run/nvidia-persistenced 2>&1; getent passwd nvidia-persistenced nvpd 2>&1'
capsh nccl-conf 'cat /etc/nccl.conf 2>&1; ls -la /etc/nccl.conf 2>&1'
capsh python 'ls -la /usr/bin/python3*; /usr/bin/python3 --version; /opt/torch/.venv/bin/python -c "import sys,torch; print(sys.version); print(torch.__version__, torch.version.cuda, torch.cuda.nccl.version())" 2>&1; ls /usr/local/cuda* -d 2>&1; nvcc --version 2>&1'
capsh apt-sources 'ls -la /etc/apt/sources.list.d /etc/apt/preferences.d 2>&1; cat /etc/apt/sources.list.d/* 2>&1 | head -40'
capsh dmesg-nvrm 'dmesg 2>&1 | grep -iE "nvrm|nvidia|xid|peermem|dmabuf" | head -200'
echo "# done $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$log"
