#!/usr/bin/python3
# The dashboard in Debian's headless chromium (chromium-driver, python3-selenium), run by
# test-cluster-dash.sh: every claim is checked against cast, never against the page alone.
# Env: DASH_URL, ETH_RPC_URL, CLUSTER_CONTRACT, OWNER (an unlocked anvil account), CAST,
# OUT (where the screenshots go).
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
WAIT_S = 15  # bound on every wait for the page; the time taken is printed, never asserted


def cast(*args):
    return subprocess.check_output([CAST, *args], env=dict(os.environ, ETH_RPC_URL=RPC),
                                   text=True).strip()


def cast_tokens():
    """The live token ids as the contract reports them (bit t of liveTokenBitmap)."""
    bitmap = int(cast("call", CONTRACT, "liveTokenBitmap()(uint256)").split()[0])
    return [t for t in range(1, 255) if bitmap >> t & 1]


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


def screenshot(d, width, name):
    d.set_window_size(width, 900)
    time.sleep(0.3)
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(width, min(max(height, 600), 4000))
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

    laptop = screenshot(d, 1280, "dash-laptop.png")
    phone = screenshot(d, 390, "dash-phone.png")
    d.set_window_size(1280, 1000)
    ok(f"screenshots {laptop} and {phone}")

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

    # Full: a third token by cast, then a mint from the page reverts in simulation.
    cast("send", "--private-key", OWNER_SK, CONTRACT, "mintNodeAccess(address,string)", holder, "third")
    live = len(cast_tokens())
    wait_for("the third token", lambda: len(page_tokens(d)) == live)
    nonce = cast("nonce", OWNER)
    form = d.find_element(By.CSS_SELECTOR, 'form[data-action="mint"]')
    form.find_element(By.NAME, "to").send_keys(holder)
    form.find_element(By.NAME, "label").send_keys("one-too-many")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for("the refusal", lambda: "refused" in outcome(), outcome)
    text = d.find_element(By.ID, "outcome").text
    assert f"ClusterFull({live})" in text and "nothing sent" in text, text
    time.sleep(1)
    assert cast("nonce", OWNER) == nonce, "the refused mint sent a transaction"
    assert len(cast_tokens()) == live
    ok(f"a mint into a full cluster shows '{text}', and the nonce stays {nonce}")


if __name__ == "__main__":
    main()
