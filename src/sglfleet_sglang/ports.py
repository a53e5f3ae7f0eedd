"""SGLang's port layout: the block one serving group binds, from its `dist_init_port` D.

Read from SGLang 0.5.23's source (`sglfleet_sglang.SGLANG_VERSION`):
  D            torch.distributed rendezvous (TCPStore on rank 0), `--dist-init-addr`
  D+1..D+6     dp-attention ZMQ sockets (PortArgs.init_new: port_base = D+1, +0..+5)
  D+13         dp-attention worker-port handshake (DP_ATTENTION_HANDSHAKE_PORT_DELTA)
  D+14         `--nccl-port` (else a random free port)
  D+32..D+63   env SGLANG_PORT: get_open_port() searches upwards from it (broadcast queues,
               dp worker ports) instead of asking the kernel for a random port
  D+64         env SGLANG_TCP_STORE_PORT (global TCPStore; SGLang's default 29600)
NCCL's own bootstrap and data sockets bind port 0, i.e. the kernel's ephemeral range, so members
also accept each other there.
"""

DIST_INIT_ZMQ_OFFSETS = range(1, 7)
# With DP attention on a multi-node group: dist_init_port+1 .. +6.
ATTN_DP_DERIVED_PORTS = len(DIST_INIT_ZMQ_OFFSETS)
DP_ATTENTION_HANDSHAKE_OFFSET = 13
NCCL_PORT_OFFSET = 14
SGLANG_PORT_OFFSET = 32
SGLANG_PORT_SPAN = 32
TCP_STORE_PORT_OFFSET = 64
BLOCK_SIZE = TCP_STORE_PORT_OFFSET + 1
