/* Anchors the net library while its modules are being written. */
typedef int sk_net_anchor;
