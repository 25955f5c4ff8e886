/*
 * Copyright (c) 2026 TinyFix
 * SPDX-License-Identifier: Apache-2.0
 *
 * SMP over UDP that waits for requests in zsock_poll() instead of a blocking
 * zsock_recvfrom().
 *
 * Why it exists: on Zephyr 4.3 the native_sim offloaded sockets (NSOS) hold a socket's
 * lock for as long as a blocking recvfrom() waits, and MCUmgr's own UDP transport
 * answers from the SMP work queue on the socket its receive thread is blocked on, so
 * every reply waits for the next request (Zephyr PR #102192 fixes NSOS after 4.3).
 * poll() waits without the lock on every socket implementation, so this transport
 * answers at once there and behaves like MCUmgr's everywhere else. Prefer
 * CONFIG_MCUMGR_TRANSPORT_UDP on a Zephyr with that fix.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/mgmt/mcumgr/mgmt/handlers.h>
#include <zephyr/mgmt/mcumgr/mgmt/mgmt.h>
#include <zephyr/mgmt/mcumgr/smp/smp.h>
#include <zephyr/mgmt/mcumgr/transport/smp.h>
#include <zephyr/net/socket.h>

/* smp_rx_req(): hands a received packet to the SMP work queue. */
#include <mgmt/mcumgr/transport/smp_internal.h>

LOG_MODULE_REGISTER(tinyfix_smp_udp, CONFIG_TINYFIX_LOG_LEVEL);

/* Each request buffer carries its sender, so the reply goes back to it. */
struct peer {
	struct sockaddr_in addr;
};

BUILD_ASSERT(sizeof(struct peer) <= CONFIG_MCUMGR_TRANSPORT_NETBUF_USER_DATA_SIZE,
	     "CONFIG_MCUMGR_TRANSPORT_NETBUF_USER_DATA_SIZE must hold a struct sockaddr_in");

/* A socket that cannot be made yet (no interface up) is retried this often. */
#define BIND_RETRY K_MSEC(500)

static struct smp_transport transport;
static int udp_sock = -1;
static uint8_t recv_buffer[CONFIG_TINYFIX_MCUMGR_UDP_MTU];

K_THREAD_STACK_DEFINE(receiver_stack, CONFIG_TINYFIX_MCUMGR_UDP_STACK_SIZE);
static struct k_thread receiver_thread;

static int send_reply(struct net_buf *nb)
{
	const struct peer *peer = net_buf_user_data(nb);
	int rc = MGMT_ERR_EOK;

	if (zsock_sendto(udp_sock, nb->data, nb->len, 0, (const struct sockaddr *)&peer->addr,
			 sizeof(peer->addr)) < 0) {
		rc = errno == ENOMEM ? MGMT_ERR_EMSGSIZE : MGMT_ERR_EINVAL;
	}
	smp_packet_free(nb);
	return rc;
}

static uint16_t reply_mtu(const struct net_buf *nb)
{
	ARG_UNUSED(nb);
	return CONFIG_TINYFIX_MCUMGR_UDP_MTU;
}

static int copy_peer(struct net_buf *dst, const struct net_buf *src)
{
	memcpy(net_buf_user_data(dst), net_buf_user_data(src), sizeof(struct peer));
	return MGMT_ERR_EOK;
}

static int open_socket(void)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(CONFIG_TINYFIX_MCUMGR_UDP_PORT),
		.sin_addr = INADDR_ANY_INIT,
	};
	int sock = zsock_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);

	if (sock < 0) {
		return -errno;
	}
	if (zsock_bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		zsock_close(sock);
		return err;
	}
	return sock;
}

static void receive_one(void)
{
	struct peer peer;
	socklen_t peer_len = sizeof(peer.addr);
	struct net_buf *nb;
	ssize_t len;

	/* The datagram is read even when no buffer is free, so the socket drains. */
	len = zsock_recvfrom(udp_sock, recv_buffer, sizeof(recv_buffer), ZSOCK_MSG_DONTWAIT,
			     (struct sockaddr *)&peer.addr, &peer_len);
	if (len <= 0) {
		return;
	}
	nb = smp_packet_alloc();
	if (nb == NULL) {
		LOG_WRN("no SMP buffer free, request of %d bytes dropped", (int)len);
		return;
	}
	if (len > net_buf_tailroom(nb)) {
		LOG_WRN("request of %d bytes is larger than an SMP buffer", (int)len);
		smp_packet_free(nb);
		return;
	}
	net_buf_add_mem(nb, recv_buffer, len);
	memcpy(net_buf_user_data(nb), &peer, sizeof(peer));
	smp_rx_req(&transport, nb);
}

static void receiver(void *p1, void *p2, void *p3)
{
	struct zsock_pollfd pfd = {.events = ZSOCK_POLLIN};
	int last_err = 0;

	ARG_UNUSED(p1);
	ARG_UNUSED(p2);
	ARG_UNUSED(p3);

	while (udp_sock < 0) {
		int rc = open_socket();

		if (rc >= 0) {
			udp_sock = rc;
		} else {
			if (rc != last_err) {
				LOG_INF("SMP/UDP socket not open yet (%d), retrying", rc);
				last_err = rc;
			}
			k_sleep(BIND_RETRY);
		}
	}
	LOG_INF("SMP over UDP on port %d", CONFIG_TINYFIX_MCUMGR_UDP_PORT);

	pfd.fd = udp_sock;
	while (true) {
		if (zsock_poll(&pfd, 1, -1) > 0 && (pfd.revents & ZSOCK_POLLIN)) {
			receive_one();
		}
	}
}

static void tinyfix_smp_udp_start(void)
{
	int rc;

	transport.functions.output = send_reply;
	transport.functions.get_mtu = reply_mtu;
	transport.functions.ud_copy = copy_peer;
	rc = smp_transport_init(&transport);
	if (rc != 0) {
		LOG_ERR("SMP/UDP transport not registered: %d", rc);
		return;
	}
	k_thread_create(&receiver_thread, receiver_stack, K_THREAD_STACK_SIZEOF(receiver_stack),
			receiver, NULL, NULL, NULL, CONFIG_TINYFIX_MCUMGR_UDP_THREAD_PRIO, 0,
			K_NO_WAIT);
	k_thread_name_set(&receiver_thread, "tinyfix_smp_udp");
}

MCUMGR_HANDLER_DEFINE(tinyfix_smp_udp, tinyfix_smp_udp_start);
