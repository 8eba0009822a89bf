"""test_csm_golden.py - the csm-smb rubric pack against its golden attempts.

Every attempt under rubrics/csm-smb/attempts/ is graded offline with
`scoreline grade rubrics/csm-smb/csm-smb.json ATTEMPT` and compared with the
attempt's "expected" block (decision, total percent, every item's points, the
set of fired red flags); a difference fails with one readable diff per attempt.
The issue's properties are then asserted explicitly:

- keyword stuffing scores below the genuine answers it imitates ("imitates" +
  "stuffed_items" in the stuffing attempts name the pairs);
- the empathy red-flag attempt has a high total but is rejected by zero_empathy,
  with the flag's evidence in the result;
- each format variant of a definitive answer earns what the canonical form earns
  ("variant_of" + "variant_items");
- negated (and hedged) phrases earn nothing for the element they negate
  ("negated" / "hedged": item -> element ids);
- blank answers are unanswered ("unanswered": item ids with status
  "unanswered" and 0 points).

The expected-block format is described in rubrics/csm-smb/README.md.

Environment: SCORELINE_BIN_DIR (build directory), SCORELINE_SOURCE_DIR (repo).
"""

import glob
import json
import os
import subprocess
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor

SOURCE_DIR = os.environ.get(
    "SCORELINE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("SCORELINE_BIN_DIR", os.path.join(SOURCE_DIR, "build"))
PACK = os.path.join(SOURCE_DIR, "rubrics", "csm-smb")
RUBRIC = os.path.join(PACK, "csm-smb.json")
ATTEMPTS = sorted(glob.glob(os.path.join(PACK, "attempts", "*.json")))


def cli():
    for cand in (os.path.join(BIN_DIR, "cli", "scoreline"), os.path.join(BIN_DIR, "scoreline"),
                 os.path.join(BIN_DIR, "bin", "scoreline")):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError("scoreline not found under %s (set SCORELINE_BIN_DIR)" % BIN_DIR)


def grade(path):
    cp = subprocess.run([cli(), "grade", RUBRIC, path], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=60)
    if cp.returncode != 0:
        raise AssertionError("%s: scoreline grade exited %d: %s" % (
            os.path.basename(path), cp.returncode, cp.stderr.decode("utf-8", "replace").strip()))
    return json.loads(cp.stdout.decode("utf-8"))


def actual_of(result):
    return {
        "decision": result["decision"],
        "total_percent_bp": result["total"]["percent_bp"],
        "items": {i["id"]: i["points_milli"] for i in result["items"]},
        "red_flags": sorted(f["id"] for f in result["red_flags"] if f["fired"]),
    }


def diff(expected, actual):
    """Readable lines for every difference between an expected block and a result."""
    out = []
    for k in ("decision", "total_percent_bp"):
        if expected.get(k) != actual[k]:
            out.append("  %s: expected %r, got %r" % (k, expected.get(k), actual[k]))
    exp_items = expected.get("items", {})
    for item in sorted(set(exp_items) | set(actual["items"])):
        e, a = exp_items.get(item), actual["items"].get(item)
        if e != a:
            out.append("  items.%s: expected %s, got %s" % (item, e, a))
    ef, af = sorted(expected.get("red_flags", [])), actual["red_flags"]
    if ef != af:
        out.append("  red_flags: expected %s, got %s (missing %s, extra %s)" % (
            ef, af, sorted(set(ef) - set(af)), sorted(set(af) - set(ef))))
    return out


class CsmGoldenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.attempts, cls.results = {}, {}
        for p in ATTEMPTS:
            with open(p, encoding="utf-8") as f:
                cls.attempts[os.path.basename(p)] = json.load(f)
        with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as ex:
            for name, res in zip(cls.attempts, ex.map(grade, ATTEMPTS)):
                cls.results[name] = res
        cls.by_job = {a["job_id"]: n for n, a in cls.attempts.items()}

    def item(self, name, item_id):
        for it in self.results[name]["items"]:
            if it["id"] == item_id:
                return it
        self.fail("%s: no item %s in the result" % (name, item_id))

    def points(self, name, item_id):
        return self.item(name, item_id)["points_milli"]

    def named(self, job_id):
        self.assertIn(job_id, self.by_job, "no attempt with job_id %s" % job_id)
        return self.by_job[job_id]

    # ---- the pack itself ----------------------------------------------------

    def test_pack_shape(self):
        self.assertGreaterEqual(len(self.attempts), 60, "the golden set needs at least 60 attempts")
        with open(RUBRIC, encoding="utf-8") as f:
            rubric = json.load(f)
        self.assertEqual(rubric["id"], "csm-smb")
        item_ids = {i["id"] for i in rubric["items"]}
        jobs = set()
        for name, a in self.attempts.items():
            self.assertEqual(a.get("rubric"), "csm-smb", name)
            self.assertNotIn(a["job_id"], jobs, "%s: duplicate job_id" % name)
            jobs.add(a["job_id"])
            self.assertTrue(a.get("about"), "%s: say what the attempt is for in 'about'" % name)
            exp = a.get("expected")
            self.assertIsInstance(exp, dict, "%s: no expected block" % name)
            for k in ("decision", "total_percent_bp", "items", "red_flags"):
                self.assertIn(k, exp, "%s: expected.%s missing" % (name, k))
            self.assertEqual(set(exp["items"]), item_ids, "%s: expected.items must list every item" % name)
            self.assertTrue(set(a["responses"]) <= item_ids, name)

    def test_every_attempt_matches_its_expected_result(self):
        failures = []
        for name in sorted(self.attempts):
            d = diff(self.attempts[name]["expected"], actual_of(self.results[name]))
            if d:
                failures.append("%s (%s):\n%s" % (name, self.attempts[name]["job_id"], "\n".join(d)))
        if failures:
            self.fail("%d of %d attempts differ from their expected results:\n%s" % (
                len(failures), len(self.attempts), "\n".join(failures)))

    def test_the_three_decisions_and_pending_all_occur(self):
        seen = {r["decision"] for r in self.results.values()}
        self.assertEqual(seen, {"advance", "review", "reject", "pending"})

    # ---- the properties ---------------------------------------------

    def test_keyword_stuffing_scores_below_the_genuine_answers_it_imitates(self):
        pairs = [(n, a) for n, a in sorted(self.attempts.items()) if "imitates" in a]
        self.assertGreaterEqual(len(pairs), 4, "name the stuffing/genuine pairs with 'imitates'")
        for name, a in pairs:
            genuine = self.named(a["imitates"])
            self.assertTrue(a.get("stuffed_items"), name)
            for item in a["stuffed_items"]:
                self.assertLess(self.points(name, item), self.points(genuine, item),
                                "%s: stuffed %s must score below %s's genuine answer" % (name, item, genuine))
                trace = self.item(name, item)["trace"]
                self.assertTrue(any(t["rule"] == "keyword_list" and t["matched"] for t in trace),
                                "%s: %s not recognised as a keyword list" % (name, item))
            self.assertLess(self.results[name]["total"]["percent_bp"],
                            self.results[genuine]["total"]["percent_bp"],
                            "%s must total below %s" % (name, genuine))
            fired = {f["id"] for f in self.results[name]["red_flags"] if f["fired"]}
            self.assertIn("keyword_stuffing", fired, name)

    def test_empathy_red_flag_rejects_a_high_total_and_shows_its_evidence(self):
        name = "a06-no-empathy.json"
        r = self.results[name]
        self.assertGreaterEqual(r["total"]["percent_bp"], 7500, "the no-empathy attempt must score high")
        self.assertEqual(r["band"], "strong")
        self.assertEqual(r["decision"], "reject")
        flag = [f for f in r["red_flags"] if f["id"] == "zero_empathy"][0]
        self.assertTrue(flag["fired"])
        self.assertEqual(flag["effect"], "disqualify")
        self.assertIn("red flag 8", flag["reason"])
        terms = {e["term"]: e["value"] for e in flag["evidence"]}
        self.assertEqual(terms.get("answered(angry_reply)"), "true", terms)
        self.assertEqual(terms.get("missing(angry_reply.apology)"), "true", terms)
        self.assertEqual(terms.get("missing(angry_reply.acknowledge)"), "true", terms)
        # the same reply with an apology and an acknowledgement advances
        self.assertEqual(self.results["a01-strong.json"]["decision"], "advance")
        # and a negated apology on an otherwise strong attempt is also rejected
        r37 = self.results["a37-negated-apology.json"]
        self.assertGreaterEqual(r37["total"]["percent_bp"], 7500)
        self.assertEqual(r37["decision"], "reject")

    def test_format_variants_earn_what_the_canonical_form_earns(self):
        variants = [(n, a) for n, a in sorted(self.attempts.items()) if "variant_of" in a]
        self.assertGreaterEqual(len(variants), 10)
        covered = set()
        for name, a in variants:
            canonical = self.named(a["variant_of"])
            for item in a["variant_items"]:
                covered.add(item)
                self.assertEqual(a["responses"].get(item) != self.attempts[canonical]["responses"].get(item),
                                 True, "%s: %s is not a different form" % (name, item))
                self.assertEqual(self.points(name, item), self.points(canonical, item),
                                 "%s: %s written as %r earns %d, the canonical form %d" % (
                                     name, item, a["responses"].get(item), self.points(name, item),
                                     self.points(canonical, item)))
        for item in ("growth_fix", "renewal_dates", "email_fix", "email_wrong_name", "roi_supported",
                     "at_risk", "upsell", "onboarding_plan", "incident_steps"):
            self.assertIn(item, covered, "no format variant for %s" % item)

    def test_negated_and_hedged_phrases_earn_nothing_for_their_element(self):
        checked = 0
        for name, a in sorted(self.attempts.items()):
            for key, why in (("negated", "negated"), ("hedged", "hedged")):
                for item, elements in a.get(key, {}).items():
                    trace = {t["rule"]: t for t in self.item(name, item)["trace"]}
                    for el in elements:
                        checked += 1
                        t = trace.get(el)
                        self.assertIsNotNone(t, "%s: no rule %s in %s's trace" % (name, el, item))
                        self.assertFalse(t["matched"], "%s: %s.%s must not match" % (name, item, el))
                        self.assertEqual(t["points_milli"], 0, "%s: %s.%s" % (name, item, el))
                        whys = [r.get("why") for r in t.get("rejected", [])]
                        self.assertIn(why, whys, "%s: %s.%s shows no %s match" % (name, item, el, why))
        self.assertGreaterEqual(checked, 5)

    def test_blank_answers_are_unanswered(self):
        checked = 0
        for name, a in sorted(self.attempts.items()):
            for item in a.get("unanswered", []):
                checked += 1
                it = self.item(name, item)
                self.assertEqual(it["status"], "unanswered", "%s: %s" % (name, item))
                self.assertEqual(it["points_milli"], 0, "%s: %s" % (name, item))
        self.assertGreaterEqual(checked, 6)

    def test_other_disqualifying_and_review_rules(self):
        def fired(name):
            return {f["id"] for f in self.results[name]["red_flags"] if f["fired"]}
        self.assertIn("tone_deaf_interview", fired("a49-tone-deaf-flagged.json"))
        self.assertEqual(self.results["a49-tone-deaf-flagged.json"]["decision"], "reject")
        self.assertIn("poor_communication", fired("a52-could-not-convey.json"))
        self.assertIn("poor_communication", fired("a53-poor-written-communication.json"))
        self.assertIn("raters_disagree", fired("a51-raters-disagree.json"))
        self.assertEqual(self.results["a51-raters-disagree.json"]["decision"], "review")
        self.assertEqual(self.results["a07-ratings-pending.json"]["decision"], "pending")
        # one interviewer's lowest rating on a question whose bottom anchor is
        # tone-deaf rejects, although the median is fine
        r71 = self.results["a71-tone-deaf-one-rater.json"]
        self.assertIn("tone_deaf_interview", fired("a71-tone-deaf-one-rater.json"))
        self.assertEqual(r71["decision"], "reject")
        self.assertGreaterEqual(r71["total"]["percent_bp"], 7500)
        flag = [f for f in r71["red_flags"] if f["id"] == "tone_deaf_interview"][0]
        self.assertIn({"term": "min_rating(roadmap_request)", "value": "1"}, flag["evidence"])
        # three of four messages too poor to convey ideas
        self.assertIn("poor_communication", fired("a72-poor-communication-three-of-four.json"))
        self.assertEqual(self.results["a72-poor-communication-three-of-four.json"]["decision"], "reject")
        # the wrong-direction correction earns nothing, although both names
        # appear, and so does the reversed finding
        self.assertEqual(self.points("a39-name-reversed.json", "email_fix"), 0)
        self.assertEqual(self.points("a39-name-reversed.json", "email_wrong_name"), 0)
        self.assertGreater(self.points("a01-strong.json", "email_fix"), 0)
        # naming both names without saying which is wrong earns half the finding
        self.assertEqual(self.points("a08-strong-concise.json", "email_wrong_name"), 1000)
        # a wrong pick quoting the right row's figures earns nothing
        for name in ("a40-wrong-pick-right-data.json", "a70-pick-text-wrong-row.json"):
            self.assertEqual(self.points(name, "at_risk"), 0, name)
            self.assertEqual(self.points(name, "upsell"), 0, name)

    def test_genuine_messages_are_not_mistaken_for_keyword_lists(self):
        for name, a in sorted(self.attempts.items()):
            if "imitates" in a or "stuffing" in a["about"].lower():
                continue
            fired = {f["id"] for f in self.results[name]["red_flags"] if f["fired"]}
            self.assertNotIn("keyword_stuffing", fired, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
