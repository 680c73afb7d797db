#!/usr/bin/python3
# The dashboard in Debian's headless chromium (chromium-driver, python3-selenium), run by
# test-cluster-dash.sh: every claim is checked against cast, never against the page alone.
# Env: DASH_URL, ETH_RPC_URL, CLUSTER_CONTRACT, OWNER (an unlocked anvil account), CAST,
# OUT (where the screenshots go).
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL, RPC, CONTRACT = os.environ["DASH_URL"], os.environ["ETH_RPC_URL"], os.environ["CLUSTER_CONTRACT"]
OWNER, CAST, OUT = os.environ["OWNER"], os.environ["CAST"], os.environ["OUT"]
OWNER_SK = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KMS_SK, BIN = os.environ["KMS_SK"], os.environ["BIN"]
APP_SK = "0x" + secrets.token_hex(32)
WAIT_S = 15  # bound on every wait for the page; the time taken is printed, never asserted


def cast(*args):
    return subprocess.check_output([CAST, *args], env=dict(os.environ, ETH_RPC_URL=RPC),
                                   text=True).strip()


def cast_tokens():
    """The live token ids as the contract reports them (bit t of liveTokenBitmap)."""
    bitmap = int(cast("call", CONTRACT, "liveTokenBitmap()(uint256)").split()[0])
    return [t for t in range(1, 255) if bitmap >> t & 1]


def compressed(sk):
    pub = cast("wallet", "public-key", "--private-key", sk)[2:]
    return ("02" if int(pub[-1], 16) % 2 == 0 else "03") + pub[:64]


def sign(sk, digest):
    return cast("wallet", "sign", "--no-hash", "--private-key", sk, digest)


def register(token, instance, endpoint):
    """A peer record for instance, signed as a dstack CVM would (node key, app key, KMS root),
    sent with cast: what the agent and the relayer do, without them."""
    node_sk = "0x" + secrets.token_hex(32)
    node, app = compressed(node_sk), compressed(APP_SK)
    app_sig = sign(APP_SK, cast("keccak", "dstack-p2p:node:" + node))
    kms_msg = "0x" + b"dstack-kms-issued:".hex() + CONTRACT[2:].lower() + app
    kms_sig = sign(KMS_SK, cast("keccak", kms_msg))
    wg = "0x%064x" % (1000 + token)
    digest = cast("keccak", cast(
        "abi-encode", "f(bytes32,uint256,address,address,bytes32,bytes32,uint8,uint64)",
        cast("keccak", "dstack-p2p.PeerRecord.v1"), cast("chain-id"), CONTRACT, instance, wg,
        cast("keccak", endpoint), "1", "1"))
    rec = {"instanceId": instance, "wgPublicKey": wg, "endpoint": endpoint, "mode": 1, "nonce": 1,
           "nodePubkey": "0x" + cast("wallet", "public-key", "--private-key", node_sk)[2:],
           "appPubkey": "0x" + cast("wallet", "public-key", "--private-key", APP_SK)[2:],
           "appSignature": app_sig, "kmsSignature": kms_sig, "nodeSignature": sign(node_sk, digest)}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(rec, f)
        f.flush()
        data = subprocess.check_output([BIN, "chain", "calldata", "--record", f.name], text=True).strip()
    cast("send", "--private-key", OWNER_SK, CONTRACT, data)
    assert cast("call", CONTRACT, "instanceIsRegistered(address)(bool)", instance) == "true"


def ether(wei):
    """wei in ETH as cast to-unit says it, without trailing zeros ("0.02")."""
    v = cast("to-unit", str(wei), "ether")
    return v.rstrip("0").rstrip(".") if "." in v else v


def page_tokens(d):
    return [int(r.get_attribute("data-token"))
            for r in d.find_elements(By.CSS_SELECTOR, "#token-rows tr")]


def wait_for(what, cond, show=None):
    start = time.monotonic()
    while time.monotonic() - start < WAIT_S:
        try:
            v = cond()
        except Exception:  # the DOM is being re-rendered under us: look again
            v = None
        if v:
            return time.monotonic() - start
        time.sleep(0.05)
    sys.exit(f"FAIL: {what}: not within {WAIT_S} s" + (f" (page: {show()!r})" if show else ""))


def ok(msg):
    print("ok: " + msg, flush=True)


# A test wallet: EIP-1193 request() forwarded to anvil, whose dev accounts are unlocked, so
# eth_sendTransaction is signed by anvil; a JSON-RPC error is thrown with its code and data
# as wallets do.
PROVIDER = """
window.ethereum = {
  isTestWallet: true,
  async request({ method, params }) {
    if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [%r];
    const r = await fetch(%r, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: params || [] }) });
    const j = await r.json();
    if (j.error) throw Object.assign(new Error(j.error.message), { code: j.error.code, data: j.error.data });
    return j.result;
  },
};
"""


def main():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-extensions", "--window-size=1280,1000",
              "--user-data-dir=" + tempfile.mkdtemp(prefix="dash-chromium.")):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        run(d)
    finally:
        d.quit()


def screenshot(d, width, name, height=None):
    d.execute_script("window.scrollTo(0, 0)")
    d.set_window_size(width, 900)
    time.sleep(0.3)
    if height is None:
        height = min(max(d.execute_script("return document.documentElement.scrollHeight"), 600), 4000)
    d.set_window_size(width, height)
    time.sleep(0.3)
    path = os.path.join(OUT, name)
    d.save_screenshot(path)
    return path


def run(d):
    # The page's CSP allows only its own origin; a real wallet lives outside the page, the
    # test wallet inside it, so its fetch to anvil needs the CSP bypassed.
    d.execute_cdp_cmd("Page.setBypassCSP", {"enabled": True})
    d.get(URL)
    want = cast_tokens()
    took = wait_for("the page lists the tokens", lambda: page_tokens(d) == want)
    ok(f"the page lists exactly the tokens cast reports {want} ({took:.2f} s)")
    for t in want:
        holder = cast("call", CONTRACT, "ownerOf(uint256)(address)", str(t)).lower()
        label = cast("call", CONTRACT, "labelOf(uint256)(string)", str(t)).strip('"')
        cell = lambda name: d.find_element(By.CSS_SELECTOR, f'#token-rows tr[data-token="{t}"] {name}')
        wait_for(f"token {t}'s holder and label", lambda: cell('td[data-label="Holder"] code')
                 .get_attribute("title").lower() == holder and
                 cell('td[data-label="Label"]').text == label,
                 lambda: cell('td[data-label="Label"]').text)
    ok("each row's holder and label are what ownerOf and labelOf return")
    assert d.find_element(By.ID, "p-max").text == cast("call", CONTRACT, "maxNodes()(uint256)")
    wait_for("the compose hash list", lambda: d.find_element(By.ID, "p-compose").text not in ("…", "none"))
    ok("policy: max nodes as maxNodes() returns, the deploy's compose hash listed from its event")

    # The manage forms start from the cluster's policy as cast reads it, not from defaults.
    price_wei = int(cast("call", CONTRACT, "mintPrice()(uint256)").split()[0])
    want_forms = {
        ("set-config", "maxNodes"): cast("call", CONTRACT, "maxNodes()(uint256)"),
        ("set-config", "modes"): cast("call", CONTRACT, "networkModes()(uint8)"),
        ("set-minting", "price"): ether(price_wei),
        ("set-minting", "public"): "1" if cast("call", CONTRACT, "publicMinting()(bool)") == "true" else "0",
        ("set-boot-policy", "policy"): cast("call", CONTRACT, "bootPolicy()(uint8)"),
        ("set-tcb-policy", "policy"): "1" if cast("call", CONTRACT, "requireTcbUpToDate()(bool)") == "true" else "0",
        ("set-any-device", "any"): "1" if cast("call", CONTRACT, "allowAnyDevice()(bool)") == "true" else "0",
    }
    field = lambda a, n: d.find_element(By.CSS_SELECTOR, f'form[data-action="{a}"] [name="{n}"]').get_property("value")
    wait_for("the forms show the cluster's policy", lambda: all(
        field(a, n) == v for (a, n), v in want_forms.items()),
        lambda: {f"{a}.{n}": (field(a, n), v) for (a, n), v in want_forms.items()})
    ok("the manage forms show the cluster's policy per cast: " +
       ", ".join(f"{a} {n}={v}" for (a, n), v in want_forms.items()))
    eth = ether(price_wei)
    assert d.find_element(By.ID, "p-minting").text == f"public, price {eth} ETH", d.find_element(By.ID, "p-minting").text
    events = lambda: [li.text for li in d.find_elements(By.CSS_SELECTOR, "#event-log li")]
    wait_for("the deploy's policy events in words", lambda: any(
        f"MintingPolicySet(price={eth} ETH, publicMinting=true)" in t for t in events()) and any(
        "BootPolicySet(policy=permissive)" in t for t in events()) and any(
        "ClusterConfigSet(maxNodes=3, networkModes=wireguard)" in t for t in events()), events)
    ok(f"price {eth} ETH; events name the policy (permissive), the modes (wireguard) and the price in ETH")


    # A mint and a burn made with cast appear without a reload.
    marker = d.execute_script("window.__notReloaded = 1; return 1")
    holder = "0x" + secrets.token_hex(20)
    cast("send", "--private-key", OWNER_SK, CONTRACT, "mintNodeAccess(address,string)", holder, "late")
    new = [t for t in cast_tokens() if t not in want]
    assert len(new) == 1, new
    took = wait_for("the minted token on the page", lambda: new[0] in page_tokens(d))
    ok(f"a mint made with cast shows as token {new[0]} after {took:.2f} s, no reload")
    wait_for("the event log names the mint", lambda: any(
        li.get_attribute("data-event") == "NodeAccessMinted"
        for li in d.find_elements(By.CSS_SELECTOR, "#event-log li")))
    cast("send", "--private-key", OWNER_SK, CONTRACT, "burn(uint256)", str(new[0]))
    assert new[0] not in cast_tokens()
    took = wait_for("the burned token leaves the page", lambda: new[0] not in page_tokens(d))
    assert d.execute_script("return window.__notReloaded") == marker, "the page reloaded"
    ok(f"a burn made with cast removes token {new[0]} after {took:.2f} s, no reload")

    # The wallet: bind token 1 (the operator holds it) from the page, checked with cast.
    d.execute_script(PROVIDER % (OWNER, RPC))
    instance = "0x" + secrets.token_hex(20)
    form = d.find_element(By.CSS_SELECTOR, 'form[data-action="bind"]')
    form.find_element(By.NAME, "token").send_keys("1")
    form.find_element(By.NAME, "instance").send_keys(instance)
    form.find_element(By.TAG_NAME, "button").click()
    outcome = lambda: d.find_element(By.ID, "outcome").text
    took = wait_for("the bind's receipt", lambda: "mined" in outcome(), outcome)
    bound = cast("call", CONTRACT, "instanceOfToken(uint256)(address)", "1").lower()
    assert bound == instance, (bound, instance)
    ok(f"bind from the page (test wallet, anvil account {OWNER}) landed: instanceOfToken(1) = "
       f"{bound} ({took:.2f} s to the receipt)")
    wait_for("the bound instance on the page", lambda: d.find_element(
        By.CSS_SELECTOR, '#token-rows tr[data-token="1"] td[data-label="Bound instance"] code')
        .get_attribute("title").lower() == instance)

    # A third node; all three registered; token 1 elected; token 2 votes against it.
    cast("send", "--private-key", OWNER_SK, CONTRACT, "mintNodeAccess(address,string)", OWNER, "gamma")
    third = [t for t in cast_tokens() if t not in (1, 2)][0]
    instances = {1: instance}
    for t in (2, third):
        instances[t] = "0x" + secrets.token_hex(20)
        cast("send", "--private-key", OWNER_SK, CONTRACT, "bindInstance(uint256,address)", str(t), instances[t])
    for t, inst in sorted(instances.items()):
        register(t, inst, f"203.0.113.{10 + t}:51820")
    cast("send", "--private-key", OWNER_SK, CONTRACT, "electLeader(uint256)", "1")
    cast("send", "--private-key", OWNER_SK, CONTRACT, "castVote(uint256,uint256,bool)", "2", "1", "true")
    leader = cast("call", CONTRACT, "currentLeaderTokenId()(uint256)")
    votes = cast("call", CONTRACT, "noConfidenceVotes()(uint256)")
    vote = cast("call", CONTRACT, "voteOf(uint256)(uint64,uint256)", "2").split()
    assert leader == "1" and votes == "1" and vote[1] == "1", (leader, votes, vote)
    took = wait_for("registered, verified, leader and vote on the page", lambda: all(
        d.find_element(By.CSS_SELECTOR, f'#token-rows tr[data-token="{t}"] td[data-label="Verified"]').text == "yes"
        for t in instances) and
        d.find_elements(By.CSS_SELECTOR, "#ring .node.lead title")[0].get_attribute("textContent").startswith("token 1 ")
        and len(d.find_elements(By.CSS_SELECTOR, "#ring line.vote")) == 1
        and d.find_element(By.ID, "leader-votes").text.startswith(votes + " of 2"),
        lambda: d.find_element(By.ID, "ring-desc").get_attribute("textContent"))
    for t, inst in instances.items():
        row = f'#token-rows tr[data-token="{t}"] '
        assert d.find_element(By.CSS_SELECTOR, row + 'td[data-label="Registered"]').text == "yes"
        assert d.find_element(By.CSS_SELECTOR, row + 'td[data-label="Endpoint"]').text == f"203.0.113.{10 + t}:51820"
        assert d.find_element(By.CSS_SELECTOR, row + 'td[data-label="Nonce"]').text == \
            cast("call", CONTRACT, "nonceOf(address)(uint64)", inst)
    ok(f"records of tokens {sorted(instances)} registered and verified, token {leader} marked leader "
       f"on the ring, the vote 2 -> 1 drawn, {votes} of 2 votes ({took:.2f} s)")
    label = cast("call", CONTRACT, "labelOf(uint256)(string)", leader).strip('"')
    overlay = ".".join(str(b) for b in bytes.fromhex(cast("call", CONTRACT, "overlayAddressOf(uint256)(bytes4)", leader)[2:]))
    expiry = int(cast("call", CONTRACT, "leadershipExpiry()(uint64)").split()[0])
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
    wait_for("the leader card's label, overlay address and lease end", lambda:
             d.find_element(By.ID, "leader-token").text == f'token {leader} "{label}"' and
             d.find_element(By.ID, "leader-address").text == overlay and
             iso in d.find_element(By.ID, "leader-lease").text,
             lambda: [d.find_element(By.ID, i).text for i in ("leader-token", "leader-address", "leader-lease")])
    wait_for("LeaderChanged with its cause and expiry in words", lambda: any(
        "LeaderChanged(" in t and "cause=elected" in t and f"expiry={iso}" in t for t in events()), events)
    ok(f"leader card: token {leader} \"{label}\", {overlay}, lease until {iso}; the event says cause=elected, expiry={iso}")
    laptop = screenshot(d, 1280, "dash-laptop.png")
    phone = screenshot(d, 390, "dash-phone.png")
    screenshot(d, 390, "dash-phone-top.png", 844)
    docs = screenshot(d, 1100, "dash-docs.png", 900)
    ok(f"screenshots {laptop}, {phone} and {docs} (the top, for docs/)")
    d.set_window_size(1280, 1000)

    # A policy from the page: boot policy strict (it was permissive), read back with cast, on
    # the page, in its form and as an event by name.
    form = d.find_element(By.CSS_SELECTOR, 'form[data-action="set-boot-policy"]')
    form.find_element(By.CSS_SELECTOR, 'option[value="0"]').click()
    form.find_element(By.TAG_NAME, "button").click()
    took = wait_for("the policy's receipt", lambda: outcome().startswith("set-boot-policy: transaction")
                    and "mined" in outcome(), outcome)
    assert cast("call", CONTRACT, "bootPolicy()(uint8)") == "0"
    wait_for("the policy on the page", lambda: d.find_element(By.ID, "p-boot").text == "strict"
             and field("set-boot-policy", "policy") == "0" and any(
                 "BootPolicySet(policy=strict)" in t for t in events()), events)
    ok(f"set-boot-policy strict from the page: bootPolicy() = 0 per cast, BootPolicySet(policy=strict) ({took:.2f} s)")

    # Full: a mint from the page reverts in simulation and sends nothing.
    live = len(cast_tokens())
    wait_for("the third token", lambda: len(page_tokens(d)) == live)
    nonce = cast("nonce", OWNER)
    form = d.find_element(By.CSS_SELECTOR, 'form[data-action="mint"]')
    form.find_element(By.NAME, "to").send_keys(holder)
    form.find_element(By.NAME, "label").send_keys("one-too-many")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for("the refusal", lambda: "refused" in outcome(), outcome)
    text = d.find_element(By.ID, "outcome").text
    assert f"ClusterFull(maxNodes={live}): every token the cluster allows is live" in text \
        and "nothing sent" in text, text
    time.sleep(1)
    assert cast("nonce", OWNER) == nonce, "the refused mint sent a transaction"
    assert len(cast_tokens()) == live
    ok(f"a mint into a full cluster shows '{text}', and the nonce stays {nonce}")


if __name__ == "__main__":
    main()
