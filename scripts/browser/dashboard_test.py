"""dashboard_test.py — the dashboard in real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium): sign in, create a job, run it and watch its output appear
live, cancel a long one, a 422 shown next to its field, an XSS probe staying text. With
--screenshots DIR, saves PNGs of the main views there.

Usage: python dashboard_test.py BASE_URL ADMIN_TOKEN [--screenshots DIR]"""
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

base, admin = sys.argv[1], sys.argv[2]
shots = sys.argv[sys.argv.index("--screenshots") + 1] if "--screenshots" in sys.argv else None
suffix = str(int(time.time()))[-6:]

options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
             "--no-first-run", "--disable-extensions"):
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
# The page re-renders while it is read: a vanished element is read again at the next poll.
wait = WebDriverWait(driver, 30, ignored_exceptions=[NoSuchElementException, StaleElementReferenceException])
checks = []


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    checks.append(what)


def shot(name, element=None):
    if shots:
        if element is None:
            driver.execute_script("window.scrollTo(0, 0)")
        else:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        time.sleep(0.3)
        driver.save_screenshot(os.path.join(shots, name + ".png"))


def fill(name, value):
    el = wait.until(EC.presence_of_element_located((By.NAME, name)))
    if el.tag_name == "select":
        Select(el).select_by_value(value)
    else:
        el.clear()
        el.send_keys(value)


def text_of(selector):
    return driver.find_element(By.CSS_SELECTOR, selector).text


def heading():
    return driver.find_element(By.CSS_SELECTOR, "main h1").text


def create_job(name, script, extra=None):
    driver.get(base + "/ui/#/jobs")  # a fresh form even when the last page was one
    wait.until(lambda d: heading() == "Jobs")
    driver.get(base + "/ui/#/jobs/new")
    wait.until(lambda d: heading() == "New job")
    fill("name", name)
    fill("script_type", "bash")
    fill("script_content", script)
    for key, value in (extra or {}).items():
        fill(key, value)
    driver.find_element(By.CSS_SELECTOR, "form[aria-label='New job'] button[type=submit]").click()


def run_from_job_page():
    button = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "form[aria-label='Run job'] button[type=submit]")))
    button.click()
    wait.until(lambda d: "/executions/" in d.current_url and heading().startswith("Execution #"))
    return int(driver.current_url.rsplit("/", 1)[1])


def status_text():
    return driver.find_element(By.CSS_SELECTOR, "dl.facts dd .badge").text


# A connection that drops: the first followed output is cut after its second chunk, so the page
# must reconnect with Last-Event-ID and show every line once. (Injected through DevTools, which
# the page's CSP does not govern; the page itself runs no inline script.)
CUT_FIRST_FOLLOW = """
(() => {
  const original = window.fetch;
  window.__follows = [];
  window.fetch = async function (input, init) {
    if (!String(input).includes("follow=true")) return original.apply(this, arguments);
    window.__follows.push(((init && init.headers) || {})["Last-Event-ID"] || null);
    const response = await original.apply(this, arguments);
    if (window.__follows.length !== 1) return response;
    const reader = response.body.getReader();
    let chunks = 0;
    const cut = new ReadableStream({ async pull(controller) {
      const { value, done } = await reader.read();
      if (done) { controller.close(); return; }
      controller.enqueue(value);
      if (++chunks >= 2) { reader.cancel(); controller.error(new TypeError("connection dropped (injected)")); }
    } });
    return new Response(cut, { status: response.status, headers: response.headers });
  };
})();
"""
driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CUT_FIRST_FOLLOW})

try:
    # GET / redirects to the dashboard; without a token it asks for one.
    driver.get(base + "/")
    wait.until(lambda d: "/ui/" in d.current_url and heading() == "Sign in")
    check(driver.execute_script("return sessionStorage.length") == 0, "no token stored before sign-in")
    fill("token", "cfn_not-a-valid-token")
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    error = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form.signin .field .error")))
    check("refused" in error.text or "not valid" in error.text, f"a refused token is said next to the field: {error.text!r}")
    shot("signin")
    fill("token", admin)
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    wait.until(lambda d: heading() == "Executions")
    check(driver.execute_script("return sessionStorage.getItem('confine.token')") == admin, "the token is in session storage")
    check(driver.execute_script("return document.cookie") == "", "no cookie")
    check(admin not in driver.current_url, "the token is not in the URL")
    check("admin" in text_of("#who"), "the header names the token's role")

    # Create a job that writes a line every half second, run it, watch the lines arrive.
    live_name = "live-" + suffix
    create_job(live_name, "for i in 1 2 3 4 5 6 7 8; do echo \"line $i\"; sleep 0.5; done")
    wait.until(lambda d: heading() == "Job " + live_name)
    check(live_name in driver.find_element(By.ID, "status").text, "the job was created")
    shot("job")
    execution = run_from_job_page()
    wait.until(lambda d: "line 1" in d.find_element(By.ID, "stdout").text)
    stdout = driver.find_element(By.ID, "stdout")
    partial = stdout.text
    check("line 8" not in partial, f"output appears while the execution runs (had {partial!r})")
    wait.until(lambda d: "line 8" in stdout.text and status_text().endswith("SUCCESS"))
    check(stdout.text.splitlines() == [f"line {i}" for i in range(1, 9)], f"every line once, in order: {stdout.text!r}")
    shot("execution")
    follows = driver.execute_script("return window.__follows")
    check(len(follows) >= 2 and follows[0] is None and follows[1], f"the dropped stream was resumed with Last-Event-ID: {follows}")
    check("Finished: SUCCESS" in driver.page_source, "the end event updated the page")

    # A long one, cancelled from the page.
    long_name = "long-" + suffix
    create_job(long_name, "echo started; sleep 120")
    wait.until(lambda d: heading() == "Job " + long_name)
    long_execution = run_from_job_page()
    wait.until(lambda d: "started" in driver.find_element(By.ID, "stdout").text)
    cancel = wait.until(EC.element_to_be_clickable((By.XPATH, "//main//button[normalize-space()='Cancel']")))
    cancel.click()
    wait.until(lambda d: status_text().endswith("CANCELLED"))
    check(True, "a long execution cancelled from its page")

    # The executions list: newest first, both there, live badges with words.
    driver.get(base + "/ui/#/executions")
    wait.until(lambda d: heading() == "Executions")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tbody tr[data-id]")) >= 2)
    ids = [int(row.get_attribute("data-id")) for row in driver.find_elements(By.CSS_SELECTOR, "tbody tr[data-id]")]
    check(ids == sorted(ids, reverse=True) and execution in ids and long_execution in ids, f"newest first: {ids}")
    shot("executions")

    # A 422 next to the field it names.
    create_job("bad-limits-" + suffix, "true", {"limits": "memory=lots"})
    error = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "form[aria-label='New job'] .error")))
    limits = driver.find_element(By.NAME, "limits")
    field = limits.find_element(By.XPATH, "./ancestor::div[contains(@class,'field')]")
    check(error in field.find_elements(By.CSS_SELECTOR, ".error"), f"the 422 is shown in the limits field: {error.text!r}")
    check(limits.get_attribute("aria-invalid") == "true" and limits.get_attribute("aria-describedby") == error.get_attribute("id"),
          "the field is marked invalid and described by the message")
    check("memory" in error.text, f"the server's detail: {error.text!r}")
    shot("job-form-422", error)

    # XSS probes: a job name and an output that are markup stay text.
    probe = '<img src=x onerror="window.__xss=1">' + suffix
    create_job(probe, "echo '<script>window.__xss=2</script><b>bold</b>'")
    wait.until(lambda d: heading() == "Job " + probe)
    run_from_job_page()
    wait.until(lambda d: "<b>bold</b>" in driver.find_element(By.ID, "stdout").text)
    driver.get(base + "/ui/#/jobs")
    wait.until(lambda d: probe in driver.find_element(By.TAG_NAME, "main").text)
    check(driver.execute_script("return window.__xss === undefined"), "no probe ran")
    check(not driver.find_elements(By.CSS_SELECTOR, "main img, main b, main script"), "no element made of API values")
    shot("jobs")

    # Policies (read only) and the admin views.
    driver.get(base + "/ui/#/policies")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main section.panel")) >= 1)
    driver.get(base + "/ui/#/audit")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main tbody tr")) >= 1)
    check("execution.cancel" in driver.find_element(By.TAG_NAME, "main").text, "the audit shows the cancel")
    driver.get(base + "/ui/#/tokens")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "main tbody tr")) >= 1)

    # Keyboard: the first tab stop is the skip link, and focus is visible.
    driver.get(base + "/ui/#/executions")
    wait.until(lambda d: heading() == "Executions")
    driver.find_element(By.TAG_NAME, "body").click()
    driver.execute_script("document.activeElement.blur()")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    ActionChains(driver).send_keys(Keys.TAB).perform()
    active = driver.switch_to.active_element
    check(active.get_attribute("class") == "skip" or active.tag_name in ("a", "button", "input"), "Tab reaches the controls")
    outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    check(outline not in ("none", ""), f"focus is visible (outline {outline})")

    # Sign out forgets the token.
    driver.find_element(By.ID, "signout").click()
    wait.until(lambda d: heading() == "Sign in")
    check(driver.execute_script("return sessionStorage.getItem('confine.token')") is None, "signing out forgets the token")

    # A viewer of another tenant: no admin views, no buttons that change anything, none of the
    # admin tenant's jobs.
    request = urllib.request.Request(base + "/tokens", method="POST", data=json.dumps({"name": "watcher-" + suffix, "role": "viewer"}).encode(),
                                     headers={"Authorization": "Bearer " + admin, "Content-Type": "application/json"})
    viewer = json.load(urllib.request.urlopen(request))["token"]
    fill("token", viewer)
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    wait.until(lambda d: heading() == "Executions")
    hidden = {link.get_attribute("textContent") for link in driver.find_elements(By.CSS_SELECTOR, "#nav a") if not link.is_displayed()}
    check(hidden == {"Policies", "Tokens", "Audit"}, f"a viewer's menu has no policies, tokens or audit (hidden: {hidden})")
    check(not driver.find_elements(By.CSS_SELECTOR, "main tbody tr[data-id]"), "a viewer of another tenant sees none of the admin tenant's executions")
    driver.get(base + "/ui/#/jobs")
    wait.until(lambda d: heading() == "Jobs")
    check(not driver.find_elements(By.LINK_TEXT, "New job") and live_name not in driver.find_element(By.TAG_NAME, "main").text,
          "a viewer cannot create jobs and sees no other tenant's")
    driver.find_element(By.ID, "signout").click()
    wait.until(lambda d: heading() == "Sign in")

    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
              and "status of 4" not in entry["message"]]
    check(not errors, f"no script error in the console: {errors}")
    print(f"browser: {len(checks)} checks passed in Chromium ({driver.capabilities.get('browserVersion')})")
except (AssertionError, TimeoutException) as failure:
    print(f"browser: FAILED after {len(checks)} checks: {failure!r}", file=sys.stderr)
    print(f"browser: at {driver.current_url}; page text:\n{driver.find_element(By.TAG_NAME, 'body').text[:3000]}", file=sys.stderr)
    for entry in driver.get_log("browser"):
        print(f"browser console: {entry}", file=sys.stderr)
    sys.exit(1)
finally:
    driver.quit()
