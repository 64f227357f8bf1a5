"""The one place for method facts and report wording: method labels and file slugs, population
and outcome labels, and the Swedish and English message catalogue of the report.

Tables, figures and the HTML report take every label from here, so a method is called the same
in a legend, a caption and a table; nothing else in the library keeps a label table.

Method keys are the estimator registry's (``finsam_eval.estimators.METHODS``). File names and
HTML ids use :func:`method_slug`, which turns the Sun–Abraham key ``sa`` into ``sunab`` so that it
cannot be confused with the outcome ``sa`` (sjuk- och aktivitetsersättning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from finsam_eval.estimators.registry import METHODS, methods_where

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LANGUAGES",
    "MESSAGES",
    "METHOD_LABELS",
    "METHOD_SLUGS",
    "OUTCOME_LABELS",
    "POPULATION_LABELS",
    "ROBUST_METHODS",
    "check_language",
    "default_caption",
    "method_label",
    "method_slug",
    "outcome_label",
    "outcome_label_for",
    "population_label",
    "row_label",
    "text",
]

LANGUAGES: tuple[str, ...] = ("sv", "en")

#: method key → label with its citation (the same in both languages: names and years), read
#: from the method registry (``MethodInfo.label``).
METHOD_LABELS: dict[str, str] = {key: info.label for key, info in METHODS.items()}

#: method key → file/id slug where the key would be ambiguous (``sa`` is also an outcome).
METHOD_SLUGS: dict[str, str] = {key: info.slug for key, info in METHODS.items() if info.slug}

#: Estimators robust to heterogeneous effects under staggered adoption (TWFE is not).
ROBUST_METHODS: tuple[str, ...] = methods_where(robust=True)

_POPULATIONS: dict[str, dict[str, str]] = {
    "sv": {
        "alla": "Alla 19–64 år",
        "kvinnor": "Kvinnor 19–64 år",
        "man": "Män 19–64 år",
        "unga": "Unga 19–24 år",
        "aldre": "Äldre 55–64 år",
    },
    "en": {
        "alla": "Everyone 19–64",
        "kvinnor": "Women 19–64",
        "man": "Men 19–64",
        "unga": "Young people 19–24",
        "aldre": "Older people 55–64",
    },
}

_OUTCOMES: dict[str, dict[str, str]] = {
    "sv": {
        "sjukpenning": "Sjukpenning",
        "sa": "Sjuk- och aktivitetsersättning",
        "ekonomiskt_bistand": "Ekonomiskt bistånd",
        "af_till_arbete": "Från arbetslöshet till arbete",
        "studier": "Studiemedel",
        "uvas": "UVAS",
    },
    "en": {
        "sjukpenning": "Sickness benefit (sjukpenning)",
        "sa": "Sickness and activity compensation (SA)",
        "ekonomiskt_bistand": "Economic assistance (ekonomiskt bistånd)",
        "af_till_arbete": "From unemployment to work",
        "studier": "Study allowances (studiemedel)",
        "uvas": "Neither working nor studying (UVAS)",
    },
}

#: The report's wording. Keys are the same in both languages (a test checks it).
MESSAGES: dict[str, dict[str, str]] = {
    "sv": {
        "title": "Finsam-utvärdering (ISF-design)",
        "breakdown_zero": "0 (ej signifikant)",
        "contents": "Innehåll",
        "summary": "Sammanfattning",
        "isf_comparison": "Jämförelse med ISF 2019",
        "specification": "Specifikation",
        "tables": "ISF-tabeller",
        "figures": "Figurer",
        "notes": "Noteringar och varningar",
        "manifest": "Manifest",
        "outcome": "Utfall",
        "population": "Population",
        "years_since_joining": "År sedan inträdet",
        "year": "År",
        "methods_agree": "Robusta metoder överens",
        "pretrend": "Förtrendstest p",
        "breakdown": "Brytpunkt M̄",
        "summary_lead": (
            "Effekten av medlemskap i ett samordningsförbund enligt {method}, i procentenheter, "
            "med punktvisa 95 % konfidensintervall för uppföljningsåren {first}–{last} "
            "(0 = inträdesåret). ”Robusta metoder överens” räknar de år då {robust} ger samma "
            "tecken och signifikans (p < 0,05). Förtrendstestet är ett Wald-test av att alla "
            "skattningar före inträdet är noll. Brytpunkten M̄ (Rambachan & Roth 2023, relativ "
            "magnitud) är hur stort brott mot parallella trender, relativt det största före "
            "inträdet, som krävs för att medeleffekten under åren {first}–{last} inte längre är "
            "signifikant."
        ),
        "agree_cell": "{agree} av {total} år",
        "no_robust": "endast en robust metod",
        "not_computed": "ej beräknad: {reason}",
        "honest_headline_only": "Brytpunkten beräknas endast för huvudmetoden ({method}).",
        "sentence_sig": (
            "{population}: andelen med {outcome} {direction} med {size} procentenheter "
            "år {year} efter inträdet ({method}), och skillnaden är statistiskt säkerställd."
        ),
        "sentence_ns": (
            "{population}: för {outcome} kan vi inte säkerställa någon effekt; år {year} är "
            "skattningen {estimate} procentenheter med intervallet {ci}."
        ),
        "up": "är högre",
        "down": "är lägre",
        "isf_lead": (
            "Detta är en jämförelse med publicerade resultat, inte ett test: ISF (2019) skattade "
            "en annan modell på andra data och år. Tabellen ställer tecknet i denna körning "
            "({method}) bredvid det tecken ISF rapporterade."
        ),
        "published": "ISF 2019 publicerade",
        "this_run": "Denna körning",
        "same_sign": "Samma tecken",
        "source": "Källa",
        "yes": "ja",
        "no": "nej",
        "partly": "delvis",
        "not_estimated": "ej skattad",
        "sign_up": "ökar",
        "sign_down": "minskar",
        "sign_none": "ingen effekt",
        "years": "år {years}",
        "significant_of": "{n} av {total} signifikanta",
        "notes_lead": (
            "Allt som skattningarna rapporterade under körningen (notes.csv): varningar och "
            "uteslutna enheter, per serie och metod."
        ),
        "no_notes": "Inga noteringar.",
        "kind": "Typ",
        "method": "Metod",
        "message": "Meddelande",
        "n_line": "N: {units} kommuner, {clusters} kluster, {cohorts} kohorter.",
        "table_lead": (
            "Skattningar i procentenheter, standardfel inom parentes; kolumnerna är år sedan "
            "inträdet (0 = inträdesåret)."
        ),
        "stars_pointwise": (
            "Stjärnorna bygger på punktvisa p-värden och stämmer därmed med figurernas punktvisa "
            "95 %-intervall"
        ),
        "dagger": "† {adjustment}-justerat p < 0,05 inom familjen",
        "figure_event": (
            "Händelsestudie, {population}: {outcome}. Skattningar med punktvisa 95 % "
            "konfidensintervall per metod; den streckade linjen skiljer åren före och efter "
            "inträdet."
        ),
        "figure_adoption": "Medlemskap i förbund per kommun och år, kommunerna ordnade efter kohort.",
        "figure_cohorts": "Antal kommuner per kohort (första medlemsåret).",
        "figure_bacon": "Goodman-Bacon-uppdelning av TWFE-skattningen: {series}.",
        "effect_pp": "Effekt (procentenheter)",
        "method_legend": "Metod",
        "cohort_axis": "Kohort (första medlemsåret)",
        "kommuner": "Kommuner",
        "never": "aldrig",
        "member": "medlem",
        "not_member": "inte medlem",
        "membership_title": "Medlemskap i Finsam per kommun och år",
        "cohorts_title": "Kommuner per kohort",
        "kommuner_by_cohort": "Kommuner per kohort (antal)",
        "calendar_year": "År",
        "bacon_title": "Goodman-Bacon: {series}",
        "bacon_weight": "Vikt",
        "bacon_estimate": "2×2-DiD-skattning (procentenheter)",
        "weighted_mean": "viktat medelvärde {mean}",
        "spec_design": (
            "Förskjuten difference-in-differences: kommuner som gått med i ett "
            "samordningsförbund jämförs med {control}. Händelsefönster {lo} till {hi} år, "
            "uppföljningsår {first}–{last}."
        ),
        "control_notyet": "kommuner som ännu inte gått med (not-yet-treated)",
        "control_never": "kommuner som aldrig gått med (never-treated)",
        "spec_methods": "Metoder: {methods}.",
        "spec_fallback": "{method} jämför med kommuner som aldrig gått med ({why}).",
        "spec_cluster": "Standardfel klustrade på {cluster}; {weights}.",
        "weights_yes": "kommunerna vägda med sin befolkning",
        "weights_no": "kommunerna ovägda",
        "spec_inference": (
            "{bootstrap} multiplikator-bootstrapdragningar (seed {seed}); p-värden justerade med "
            "{adjust} inom familjen {family}."
        ),
        "spec_other": (
            "Antecipation {anticipation} år, basperiod {base_period}, skattningsmetod för "
            "Callaway & Sant'Anna: {est_method}. Data: {source}."
        ),
        "spec_n": "{kommuner} kommuner i {cohorts} kohorter ({cohort_years}) och {never} som aldrig gått med.",
    },
    "en": {
        "title": "Finsam evaluation (ISF-style design)",
        "breakdown_zero": "0 (not significant)",
        "contents": "Contents",
        "summary": "Summary",
        "isf_comparison": "Comparison with ISF 2019",
        "specification": "Specification",
        "tables": "ISF tables",
        "figures": "Figures",
        "notes": "Notes and warnings",
        "manifest": "Manifest",
        "outcome": "Outcome",
        "population": "Population",
        "years_since_joining": "Years since joining",
        "year": "Year",
        "methods_agree": "Robust methods agree",
        "pretrend": "Pre-trend test p",
        "breakdown": "Breakdown M̄",
        "summary_lead": (
            "The effect of membership in a samordningsförbund by {method}, in percentage points, "
            "with pointwise 95% confidence intervals for follow-up years {first}–{last} "
            "(0 = year of joining). “Robust methods agree” counts the years in which {robust} "
            "give the same sign and significance (p < 0.05). The pre-trend test is a Wald test "
            "that every estimate before joining is zero. The breakdown value M̄ (Rambachan & "
            "Roth 2023, relative magnitudes) is how large a violation of parallel trends, "
            "relative to the largest one before joining, makes the average effect over "
            "years {first}–{last} no longer significant."
        ),
        "agree_cell": "{agree} of {total} years",
        "no_robust": "only one robust method",
        "not_computed": "not computed: {reason}",
        "honest_headline_only": "The breakdown value is computed for the headline method ({method}) only.",
        "sentence_sig": (
            "{population}: the share with {outcome} {direction} by {size} percentage points "
            "{year} years after joining ({method}), and the difference is statistically "
            "significant."
        ),
        "sentence_ns": (
            "{population}: for {outcome} no effect can be established; in year {year} the "
            "estimate is {estimate} percentage points with interval {ci}."
        ),
        "up": "is higher",
        "down": "is lower",
        "isf_lead": (
            "This is a comparison with published findings, not a test: ISF (2019) estimated a "
            "different model on other data and years. The table sets the sign in this run "
            "({method}) beside the sign ISF reported."
        ),
        "published": "ISF 2019 published",
        "this_run": "This run",
        "same_sign": "Same sign",
        "source": "Source",
        "yes": "yes",
        "no": "no",
        "partly": "partly",
        "not_estimated": "not estimated",
        "sign_up": "up",
        "sign_down": "down",
        "sign_none": "no effect",
        "years": "years {years}",
        "significant_of": "{n} of {total} significant",
        "notes_lead": (
            "Everything the estimators reported during the run (notes.csv): warnings and "
            "excluded units, by series and method."
        ),
        "no_notes": "No notes.",
        "kind": "Kind",
        "method": "Method",
        "message": "Message",
        "n_line": "N: {units} kommuner, {clusters} clusters, {cohorts} cohorts.",
        "table_lead": (
            "Estimates in percentage points, standard errors in parentheses; columns are years "
            "since joining (0 = year of joining)."
        ),
        "stars_pointwise": (
            "Stars use pointwise p-values and so agree with the pointwise 95% intervals in the "
            "figures"
        ),
        "dagger": "† {adjustment}-adjusted p < 0.05 within the family",
        "figure_event": (
            "Event study, {population}: {outcome}. Estimates with pointwise 95% confidence "
            "intervals by method; the dashed line separates years before and after joining."
        ),
        "figure_adoption": "Förbund membership by kommun and year, kommuner ordered by cohort.",
        "figure_cohorts": "Number of kommuner per cohort (first year of membership).",
        "figure_bacon": "Goodman-Bacon decomposition of the TWFE estimate: {series}.",
        "effect_pp": "Effect (percentage points)",
        "method_legend": "Method",
        "cohort_axis": "Cohort (first year of membership)",
        "kommuner": "Kommuner",
        "never": "never",
        "member": "member",
        "not_member": "not a member",
        "membership_title": "Finsam membership by kommun and year",
        "cohorts_title": "Kommuner per cohort",
        "kommuner_by_cohort": "Kommuner by cohort (number)",
        "calendar_year": "Year",
        "bacon_title": "Goodman-Bacon: {series}",
        "bacon_weight": "Weight",
        "bacon_estimate": "2×2 DiD estimate (percentage points)",
        "weighted_mean": "weighted mean {mean}",
        "spec_design": (
            "Staggered difference-in-differences: kommuner that joined a samordningsförbund are "
            "compared with {control}. Event window {lo} to {hi} years, follow-up years "
            "{first}–{last}."
        ),
        "control_notyet": "kommuner that had not yet joined (not-yet-treated)",
        "control_never": "kommuner that never joined (never-treated)",
        "spec_methods": "Methods: {methods}.",
        "spec_fallback": "{method} compares with kommuner that never joined ({why}).",
        "spec_cluster": "Standard errors clustered by {cluster}; {weights}.",
        "weights_yes": "kommuner weighted by their population",
        "weights_no": "kommuner unweighted",
        "spec_inference": (
            "{bootstrap} multiplier bootstrap draws (seed {seed}); p-values adjusted with "
            "{adjust} within each {family} family."
        ),
        "spec_other": (
            "Anticipation {anticipation} years, base period {base_period}, Callaway & Sant'Anna "
            "estimation method: {est_method}. Data: {source}."
        ),
        "spec_n": "{kommuner} kommuner in {cohorts} cohorts ({cohort_years}) and {never} that never joined.",
    },
}

_ADJUSTMENTS = {
    "romano_wolf": "Romano–Wolf",
    "holm": "Holm",
    "bonferroni": "Bonferroni",
    "bh": "Benjamini–Hochberg",
}


def check_language(language: str) -> str:
    """Return ``language`` if the catalogue has it, else raise naming the choices."""
    if language not in LANGUAGES:
        raise ValueError(f"report language must be one of {list(LANGUAGES)}, got {language!r}")
    return language


def text(key: str, language: str = "sv", **values: Any) -> str:
    """The catalogue entry ``key`` in ``language``, formatted with ``values``."""
    template = MESSAGES[check_language(language)][key]
    return template.format(**values) if values else template


def method_label(method: str) -> str:
    """Label of a method key (the key itself for a method without one)."""
    return METHOD_LABELS.get(str(method), str(method))


def method_slug(method: str) -> str:
    """The key of a method in file names and HTML ids (``sa`` → ``sunab``)."""
    return METHOD_SLUGS.get(str(method), str(method))


def adjustment_label(adjustment: str) -> str:
    """Readable name of a multiple-testing adjustment key."""
    return _ADJUSTMENTS.get(adjustment, adjustment)


def population_label(population: str, language: str = "sv") -> str:
    """Label of a population key in ``language``."""
    return _POPULATIONS[check_language(language)].get(str(population), str(population))


def outcome_label(outcome: str, language: str = "sv") -> str:
    """Label of an outcome key in ``language``."""
    return _OUTCOMES[check_language(language)].get(str(outcome), str(outcome))


#: Row and caption labels as in the ISF report (Swedish terms).
OUTCOME_LABELS: dict[str, str] = dict(_OUTCOMES["sv"])
POPULATION_LABELS: dict[str, str] = dict(_POPULATIONS["sv"])


def row_label(outcome: str, labels: Mapping[str, str] | None, language: str = "en") -> str:
    """Row label of an outcome: from ``labels`` when given (else its key), else the catalogue."""
    if labels is None:
        return outcome_label_for(outcome, language)
    return labels.get(outcome, outcome)


def outcome_label_for(outcome: str, language: str) -> str:
    """Row label of an outcome: the ISF (Swedish) label in Swedish, the English one otherwise."""
    return outcome_label(outcome, language)


def default_caption(table: pd.DataFrame, language: str = "en") -> str:
    """Caption from the table's attrs, e.g. "Alla 19–64 år: Callaway & Sant'Anna (2021)"."""
    population = table.attrs.get("population")
    method = table.attrs.get("method")
    if population is None or method is None:
        return ""
    return f"{population_label(population, language)}: {method_label(method)}"
