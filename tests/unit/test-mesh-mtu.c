/* SPDX-License-Identifier: MIT */
/* Unit tests of the interface MTU rule (mesh/mtu.c): wg-quick's minus 80, the gateway's 1420, P2P_MTU. */
#include <criterion/criterion.h>

#include "mesh/internal.h"

Test(mesh_mtu, the_rule)
{
	cr_assert_eq(mesh_mtu_choose(0, MESH_TRANSPORT_UDP, 1500), 1420);
	cr_assert_eq(mesh_mtu_choose(0, MESH_TRANSPORT_AUTO, 1300), 1220, "a smaller underlay");
	cr_assert_eq(mesh_mtu_choose(0, MESH_TRANSPORT_AUTO, 9000), 8920, "jumbo frames");
	cr_assert_eq(mesh_mtu_choose(0, MESH_TRANSPORT_UDP, 0), 1420, "unknown");
	cr_assert_eq(mesh_mtu_choose(0, MESH_TRANSPORT_GATEWAY, 1300), 1420,
		     "the gateway ignores the underlay");
	cr_assert_eq(mesh_mtu_choose(1300, MESH_TRANSPORT_GATEWAY, 0), 1300, "P2P_MTU wins");
	cr_assert_eq(mesh_mtu_choose(1380, MESH_TRANSPORT_UDP, 9000), 1380, "P2P_MTU wins");
	cr_assert_eq(mesh_mtu_choose(0, MESH_TRANSPORT_UDP, 600), MESH_MTU_MIN, "never below 576");
	cr_assert_eq(mesh_mtu_choose(0, MESH_TRANSPORT_AUTO, 65535), MESH_MTU_MAX,
		     "never above a relay frame");
}
