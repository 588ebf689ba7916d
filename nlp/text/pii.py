"""Mask personal data in feedback before it is stored, analysed or shown.

Placeholders: <EMAIL>, <URL>, <IBAN>, <CARD>, <CVV>, <NIR>, <ID>, <PHONE>, <ORDER>, <PERSON>,
<ADDRESS>, <BIRTHDATE>, <SECRET>, <IP>.
Dates, prices and short numbers are left alone, except a date of birth and a code after
their cue ("né le 03/04/1985", "code de vérification 483920").

Regexes only *find candidates*; checksums and number plans come from well-kept libraries:
`python-stdnum` (IBAN mod-97, French NIR key, Luhn for cards) and `phonenumbers` (the
libphonenumber plan for France, which also knows national numbers written without their 0;
Belgium's for its 9-digit landlines, "02 512 34 56").
Phone numbers spelt in words ("zéro six douze …") are read as their digits.
Names are found by cues ("Mme Dupont", "le livreur Karim", "merci à Nathalie qui …") and,
when a spaCy French pipeline with NER is passed in (`load_ner`), by its PER entities. The
pipeline is loaded once by the caller and handed to `PiiMasker`; this module keeps no global
model.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from stdnum import ean as _stdnum_ean
from stdnum import iban as _stdnum_iban
from stdnum import luhn as _stdnum_luhn

from nlp.text.names import DOCTOR_BRANDS, NAMED_BRANDS, WORD_NAMES, NameLists, faker_names

# --- URLs and e-mails ------------------------------------------------------------------------
# Every pattern below may be tried from each word boundary of a long token ("a.a.a…", 20,000
# characters are accepted): what one try may read is bounded (a domain <= 253 characters, a
# local part <= 64, the RFC limits), else the text costs quadratic time (40 kB: ~1 min).
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
# A bare domain followed by a path or a query ("exemple.fr/reset?token=..."): a link too.
# The domain runs up to the "/" or "?": the look-ahead checks it is there within 253 characters
# (\w, a wider class than the domain's, is 4x cheaper than a case-insensitive [a-z]).
_BARE_URL = re.compile(
    r"\b(?=[\w.-]{1,253}+[/?])"
    r"(?:[a-z0-9-]++\.)++(?:fr|com|net|org|eu|io|be|ch|info|biz|co|me|app)"
    r"(?:/[^\s<>\"']*|\?[^\s<>\"']+)",
    re.IGNORECASE,
)
# Query tokens left anywhere ("<EMAIL>?token=abc", "&session=..."): secrets, not words.
_QUERY = re.compile(r"[?&][\w.-]{1,40}=[^\s&<>\"']+(?:&[\w.-]{1,40}=[^\s&<>\"']+)*")
# "jean(a)gmail.com": the bracketed "a" is an at sign as often as "(at)".
# Angle brackets too ("jean<at>gmail<dot>com"), but not around a lone "a": an HTML link.
_AT = (
    r"(?:@|\s*[\[({]\s*(?:at|a|arobase|@)\s*[\])}]\s*|\s*<\s*(?:at|arobase|@)\s*>\s*"
    r"|\s+(?:at|arobase)\s+)"
)
_DOT = r"(?:\.|\s*[\[({<]\s*(?:dot|point)\s*[\])}>]\s*|\s+(?:dot|point)\s+)"
# French-speaking countries and neighbours too: "jean(at)post(dot)lu", "… @ yahoo . ca".
_TLD = r"(?:fr|com|net|org|eu|io|be|ch|lu|mc|ca|ma|tn|dz|sn|re|info|biz|co|me|de|es|it|nl|pt|uk)"
# The last label is letters (any script: "x@пример.рф") or punycode ("x@exemple.xn--p1ai").
_EMAIL = re.compile(
    r"\b[\w.+-]{1,64}+@[\w-]++(?:\.[\w-]++)*\.(?:xn--[a-zA-Z0-9-]++|[^\W\d_]{2,})\b"
)
# What the strict form leaves: "jean@exemple", "jean%40exemple.fr", "jean＠exemple.fr",
# "jean@gmail,com" (no space around the @), and "jean.dupont @ gmail . com" (spaces, but then
# a known TLD is required: "merci @SNCF" is a mention, not an address).
_EMAIL_LOOSE = re.compile(
    # Without a TLD the domain is lower case: "RT@SeaShepherd", "via@Bastamag" are handles.
    rf"\b(?!(?:rt|via|cc|by|par|merci)[@\uff20])[\w.+-]{{1,64}}+(?:@|\uff20|%40)"
    rf"(?:[\w-]+\s?[.,]\s?{_TLD}\b|(?-i:[a-z0-9-]+)\b)"
    rf"|\b[\w.+-]{{1,64}}+\s?[@\uff20]\s?[\w-]+(?:\s?\.\s?[\w-]+)*?\s?\.\s?{_TLD}\b",
    re.IGNORECASE,
)
# Obfuscated forms: jean[at]exemple.fr, jean (at) exemple (dot) fr, jean arobase exemple point fr,
# jean point dupont arobase gmail point com (the spelt-out dots of the local part too).
# Possessive runs: no "@" or spelt dot can start inside one, and backing off each of the 64
# characters of "a.a.a…" to try them again cost 0.6 s on 20,000 characters.
_EMAIL_OBFUSCATED = re.compile(
    rf"\b[\w.+-]{{1,64}}+(?:{_DOT}[\w+-]{{1,64}}+){{0,3}}{_AT}[\w-]{{1,63}}+"
    rf"(?:{_DOT}[\w-]{{1,63}}+){{0,3}}?{_DOT}{_TLD}\b",
    re.IGNORECASE,
)
# The rules above stop at the first known TLD ("jean@sub.domaine.co" of "….co.uk", "….com.au",
# "jean (at) exemple (dot) co (dot) uk"); the labels left glued to the placeholder are the same
# address. A spelt " point X" only for the country codes that take a second level ("co.uk"):
# "<EMAIL> point de vue" stays. Possessive, from the placeholder only: linear.
_EMAIL_TAIL = re.compile(
    # A capitalised word after a bare dot opens the next sentence: "….fr.Merci".
    r"<EMAIL>(?:(?:\.(?-i:(?![A-ZÀ-Ý][a-zà-ÿ]))|\s*[\[({<]\s*(?:dot|point)\s*[\])}>]\s*)[\w-]{1,63}+"
    r"|\s+(?:dot|point)\s+(?:uk|au|nz|za|jp|br|il|in|kr|tr|mx|ar|cn|tw|hk|sg)\b)++",
    re.IGNORECASE,
)
# "jean.dupont chez gmail point com": "chez" is an ordinary word ("commandé chez darty point
# com", "produit.Commandé chez amazon.fr", "mon point relais chez …"), so only at a mail
# provider, and after a local part that looks like one: a dot, an underscore or a digit, or a
# spelt dot (checked by _email_chez). Possessive: a long word without "chez" fails at once;
# at most 10 spelt dots, else "a point a point …" is read again from each of its words.
_MAIL_PROVIDER = (
    r"(?:gmail|googlemail|hotmail|yahoo|outlook|live|msn|icloud|laposte|orange|wanadoo|free|"
    r"sfr|neuf|bbox|aol|gmx|proton(?:mail)?|yopmail)"
)
_EMAIL_CHEZ = re.compile(
    r"(?<![\w.+-])([^\W\d_][\w.+-]*+|[^\W\d_][\w+-]*+(?:\s+(?:point|dot)\s+[\w+-]++){1,10}+)"
    rf"\s+chez\s+{_MAIL_PROVIDER}{_DOT}{_TLD}\b",
    re.IGNORECASE,
)


# A local part spelt with a space ("jean dupont arobase gmail point com", "jean . dupont @ …"):
# the rules above take its last word only, and leave "jean <EMAIL>". The words right before
# the placeholder are taken with it when they are known first or last names (`_email_head`):
# "écrivez à service <EMAIL>", "le site <EMAIL>" stay. Two words at most, possessive.
_EMAIL_HEAD = re.compile(
    r"(?<![\w.+'’-])(?:([^\W\d_][\w-]{0,63}+)[ \t]*[ \t.][ \t]*)?"
    r"([^\W\d_][\w-]{0,63}+)[ \t]*[ \t.][ \t]*<EMAIL>"
)

# A surname before the first name that opens a spelt or spaced address ("kowalczyk marie
# arobase gmail point com", "kowalczyk marie @ gmail.com"; not before "marie@…", one token
# kept apart from the word before): the address starts at the first name, and the surname, in
# no list, was left before `<EMAIL>`. Taken with it when the first
# name is a known one and the word before it no common word nor one that introduces an
# address (`_MAIL_INTRO`: "écrivez marie arobase …" keeps "écrivez"). Possessive: linear.
_EMAIL_SURNAME_FIRST = re.compile(
    r"(?<![\w.+'’-])([^\W\d_][\w-]{0,63}+)[ \t]+(?=([^\W\d_][\w-]{0,63}+)"
    r"(?:[ \t]*[\[({<][ \t]*(?:at|a|arobase|@)[ \t]*[\])}>]|[ \t]+(?:at|arobase)[ \t]"
    r"|[ \t]+[@\uff20]))",
    re.IGNORECASE,
)
_AT_FOUND = re.compile(r"(?i)[@\uff20]|arobase|\bat\b")
_MAIL_INTRO = frozenset(
    ["écrivez", "écrire", "écris", "écrivez-moi", "contactez", "contacter", "contacte"]
    + ["contactez-moi", "envoyez", "envoyer", "envoie", "envoyez-moi", "joindre", "joignable"]
    + ["répondez", "répondre", "courriel", "contact", "mél", "mel", "adresse", "mail", "email"]
    + ["e-mail", "mon", "ma", "est", "c'est", "c’est", "sur", "via", "par", "à", "au"]
)


def _email_chez(m: re.Match[str]) -> str:
    local = m.group(1)
    if re.search(r"\s", local):
        # A spelt dot: "jean point dupont", not "mon point relais".
        ok = local.split()[0].lower() not in _NOT_NAMES
    else:
        ok = re.search(r"[._\d]", local) is not None
    return "<EMAIL>" if ok else m.group(0)


# IP addresses (personal data: they point at a customer's line): "mon IP 86.245.12.3",
# "2a01:cb00:1234:5678::1". Four dotted numbers are a version as often ("firmware 1.0.0.12"):
# not after a version word. Checked by `ipaddress`.
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){3,8}+(?![\w:])")
_VERSION_CUE = re.compile(
    r"(?i)\b(?:v|vers?|version|firmware|build|release|maj|ios|android)\.?[ \t]*$"
)


def _ip(m: re.Match[str]) -> str:
    raw = m.group(0)
    if _VERSION_CUE.search(m.string, max(0, m.start() - 12), m.start()):
        return raw
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        return raw
    return "<IP>"


# --- bank and identity numbers ---------------------------------------------------------------
# IBAN candidates, any case, grouped by 4 (or by RIB fields 5/5/11/2), spaces/dots/dashes.
_SEP = r"(?:[ ./_-]|[ \t]*\r?\n[ \t]*)"  # between groups: space . / _ - or a line break
# Groups typed with a comma, semicolon, colon, asterisk or pipe ("06,12,34,56,78", "4111,1111,
# …", "FR76,3000,…"), the same one throughout: read as the number they split. A comma is a
# decimal mark too, so only a whole number's shape is taken (checksum, plan or 10 digits).
_ODD_SEP = r"[,;:*|]"
_IBAN_SEP = r"(?:[ ./_,;:*|-]|[ \t]*\r?\n[ \t]*)"
# "F R 7 6 3 0 0 0 …": the country and check digits may be spelt one character at a time too.
_IBAN_START = re.compile(rf"\b[A-Za-z] ?[A-Za-z] ?\d ?\d(?:{_IBAN_SEP}?[A-Za-z0-9]){{11,40}}")
_IBAN_CUE = re.compile(r"(?i)\b(?:iban|rib|bic)\b")
_IBAN_DIGITS = re.compile(rf"[A-Za-z] ?[A-Za-z] ?\d ?\d(?:{_IBAN_SEP}?\d)+")
# A bare French RIB: bank (5) branch (5) account (11) key (2).
_RIB = re.compile(r"\b(\d{5})[ .-]?(\d{5})[ .-]?([A-Za-z0-9]{11})[ .-]?(\d{2})\b")
_CARD = re.compile(r"\b\d(?:[ .-]?\d){12,18}\b")
_CARD_GROUPED = re.compile(rf"\b\d{{4}}(?:{_SEP}\d{{4}}){{2}}{_SEP}\d{{1,4}}(?:{_SEP}\d{{1,3}})?\b")
# Not a figure of a longer list ("1200,1500,1800,2000,2500"): nothing of the kind around it.
_CARD_ODD = re.compile(
    rf"(?<![\w+])(?<!\d{_ODD_SEP})(?<!\d{_ODD_SEP}[ \t])"
    rf"\d{{4}}(?P<s>[ \t]?{_ODD_SEP}[ \t]?)\d{{4}}(?:(?P=s)\d{{4}}){{2}}(?:(?P=s)\d{{1,3}})?"
    rf"(?!\d|[ \t]?{_ODD_SEP}[ \t]?\d)"
)
_CARD_CUE = re.compile(r"(?i)\b(?:cb|carte|visa|mastercard|amex|card)\b")
# The security code given with a card ("cvv 123", "cryptogramme : 456"), and its PIN ("code
# secret 1234", "code PIN : 1234"; "PIN" alone in capitals: "meuble en pin 180 cm").
_CVV = re.compile(
    r"(?i)\b((?:cvv2?|cvc2?|cryptogramme(?:\s+visuel)?|crypto|code\s+de\s+s[ée]curit[ée]"
    r"|code\s+(?:pin|secret|confidentiel)|(?-i:PIN))"
    r"\s*(?:(?:[:=]|est|c['’]est)\s*)?)\d{3,4}\b"  # "mon code secret est 1234"
)
# A date of birth after its cue ("né le 03/04/1985", "date de naissance : 3 avril 1985", "DDN
# 03.04.85"): a date is kept everywhere else (delivery and order dates are what CX reads), so
# the cue decides. A birthday without its year ("née le 3 avril") is taken too. "ne le"
# without its accent only before a date: "je ne le renvoie pas" has none.
_MONTHS = (
    r"(?:janv(?:ier)?|f[ée]vr?(?:ier)?|mars|avr(?:il)?|mai|juin|juil(?:let)?|ao[uû]t"
    r"|sept?(?:embre)?|oct(?:obre)?|nov(?:embre)?|d[ée]c(?:embre)?)"
)
_BIRTH_DATE = re.compile(
    r"(?i:(\b(?:n[ée](?:e|\(e\))?s?[ \t]+le|date[ \t]+de[ \t]+naiss(?:ance\b|\.)"
    r"|naissance\b|d\.?d\.?n\b\.?)"
    r"[ \t]*(?:(?::|=|est|c['’]est)[ \t]*)?(?:le[ \t]+)?)"
    r"([0-3]?\d(?:[./-][01]?\d(?:[./-](?:\d{4}|\d{2}))?|[ ][01]?\d[ ](?:\d{4}|\d{2}))"
    r"(?![\d/.-]?\d)"
    rf"|(?:1er|[0-3]?\d)[ \t]+{_MONTHS}\.?(?:[ \t]+(?:19|20)?\d{{2}})?(?!\w)"
    r"|(?:19|20)\d{2}-[01]\d-[0-3]\d(?!\d)))"
)
# A year of birth after its cue ("né en 1985", "née en mars 1990", "année de naissance :
# 1985"): with a town or a first name it singles a customer out as a full date does. A year
# alone elsewhere ("client depuis 1985", "en 1985 j'ai acheté") stays.
_BIRTH_YEAR = re.compile(
    r"(?i:(\b(?:n[ée](?:e|\(e\))?s?[ \t]+en|ann[ée]e[ \t]+de[ \t]+naissance)"
    r"[ \t]*(?:(?::|=|est|c['’]est)[ \t]*)?)"
    rf"(?:{_MONTHS}\.?[ \t]+)?(?:19|20)\d{{2}}(?!\d))"
)
# Secrets after their name: passwords ("mot de passe : Azerty123!", "mdp Azerty123"), access
# and door codes ("code d'accès 4821", "digicode 12A45") and one-time codes ("code de
# vérification 483920", "code reçu par SMS") → <SECRET>; logins ("identifiant : jdupont85") →
# <ID>. What follows the word must look like a secret (`_secret`): a digit, a symbol or a
# capital inside it, or quotes around it; "mot de passe oublié", "le MDP donc pas de suivi",
# "code d'accès pénible" stay. A promo code is no secret and is useful to read ("code promo
# NOEL20"), nor is a bare "code 1234"; a card's code and PIN are `_CVV`'s (before this rule).
_SECRET = re.compile(
    r"(?i:\b(?:(?P<login>identifiants?|login|nom[ \t]+d['’][ \t]?utilisateur|username|pseudo)"
    r"|mots?[ \t-]+de[ \t-]+passe|mdp|password|passwd|pwd|digicode|otp"
    r"|code[ \t]+(?:d['’][ \t]?(?:acc[eè]s|entr[ée]e|activation|authentification)"
    r"|de[ \t]+(?:v[ée]rification|validation|confirmation|connexion|s[ée]curit[ée])"
    r"|(?:re[çc]u[ \t]+)?(?:par[ \t]+)?sms|[àa][ \t]+usage[ \t]+unique|temporaire|provisoire"
    r"|otp|porte|portail|immeuble))(?![\w'’-])"
    # What it is the password of, before the value said ("mot de passe wifi : …", "mot de
    # passe du compte : …", "mon mdp Vinted est …"): up to 3 words, then ":", "=" or "est".
    r"(?:(?:[ \t]+(?!(?:est|c['’]est)\b)[\w'’-]{1,30}+){1,3}+"
    r"(?=[ \t]*(?:[:=]|(?:est|c['’]est)[ \t])))?"
    r"[ \t]*(?P<said>(?:(?:[:=]|est|c['’]est)[ \t]*){0,2}))"
    r"(?:[\"«“][ \t]?(?P<quoted>[^\s\"»”<]{1,64}+)[ \t]?[\"»”]"
    # A trailing "." or "," ends the sentence; "!" and "?" are as often the secret's own.
    r"|(?P<bare>(?=[^\s<(\[])[^\s\"»”]{1,64}(?<![.,;:)\]'’])))"
)
# A secret's own shape: a digit, a symbol inside it (not a closing "!"), an underscore or dot
# between letters ("jean.dupont"), a capital after a small letter ("motDePasse").
_SECRET_SHAPE = re.compile(r"\d|[^\w\s'’-](?=.)|\w[._]\w|[a-zà-ÿ][A-ZÀ-Ý]")
# A password or login of letters only ("mon mot de passe est soleilbleu", "mdp : azerty",
# "identifiant : jdupont") has no such shape: it is one when the text says it is the value
# (":", "=", "est", "c'est") and the word is none of what is said of a password ("mot de
# passe : incorrect", "mon mot de passe est refusé", "… est trop long").
_SECRET_STATE = re.compile(
    r"(?i)(?:oubli|perd|incorrect|erron|faux|fausse|invalide|valide|bon|mauvais|refus|bloqu"
    r"|expir|chang|modifi|r[ée]initialis|demand|envoy|re[çc]u|requis|obligatoire|toujours"
    r"|d[ée]j[àa]|jamais|correct|exact|identique|diff[ée]rent|simple|compliqu|long|court|vide"
    r"|introuvable|inconnu|accept|rejet|impossible|n[ée]cessaire|illisible|nul|chiant|p[ée]nible"
    r"|g[ée]n[ée]r|provisoire|temporaire|actif|inactif|verrouill|d[ée]sactiv|activ|cr[ée][ée]"
    r"|saisi|tap[ée]|entr[ée]|perdu|vol[ée]|pirat|hack|compromis|partout|ici|celui|pareil"
    r"|m[êe]me|encore|sensible|casse|minuscule|majuscule|faible|fort|s[ée]curis|aucun"
    r"|nouve|ancien|personnel|unique|demand)"
)
_PASSWORD_CUE = re.compile(r"passe|mdp|passw|pwd")
# A letters-only value stands alone: the clause ends after it, or a new one starts ("mdp :
# azerty et ça ne marche pas"). A sentence going on is prose ("mot de passe : rien ne marche",
# "… est pourtant bon", "… est resté bloqué"). A sign-off or greeting ends it too ("mdp :
# azerty cordialement", "… bonne journée"), and so does the next field ("identifiant : jdupont
# mot de passe : azerty"): the value was kept there.
_SAID_END = re.compile(
    r"[ \t]*(?:$|[^\w\s'’-]|\n|j['’]|(?:et|mais|donc|car|je|merci|svp|stp|cordialement|cdlt"
    r"|bonjour|bonsoir|bonne[ \t]+(?:journ[ée]e|soir[ée]e)|bisous|mots?[ \t-]+de[ \t-]+passe|mdp"
    r"|password|identifiant|login)(?![\w'’-]))",
    re.IGNORECASE,
)
# What went wrong, and the shapes of what is said of it: a participle ("enregistré",
# "sauvegardé") or an "-able" / "-ible" adjective ("inutilisable").
_SAID_PROSE = re.compile(r"(?i)probl[èe]me|erreur|souci|bug|.*(?:é|ée|és|ées|[ai]bles?)$")
# NIR: sex, year, month, department (2A/2B for Corsica), commune, order, key; any grouping.
_NIR = re.compile(
    r"\b[1-478][ .-]?\d{2}[ .-]?(?:0[1-9]|1[0-2]|[2-9]\d)[ .-]?"
    # Overseas departments have 3 digits and their communes 2: "971 12", not "97 112".
    r"(?:(?:\d{2}|2[ABab])[ .-]?\d{3}|97[1-8][ .-]?\d{2})[ .-]?"
    r"\d{3}(?:[ .-]?\d{2})?\b"
)
# A 13-digit NIR without its key has the length of an EAN-13 barcode ("EAN 3017620422003"):
# ungrouped or printed 1-6-6, it is a product code after "EAN", "GTIN", "code-barre", "réf"
# (kept, or an <ORDER> as other references), and so is one with a valid EAN check digit unless
# a social-security word comes before it. Grouped the NIR's way ("1 85 05 78 006 084") or with
# its key (15 digits), a NIR.
_NIR_CUE = re.compile(r"(?i)\b(?:s[ée]cu\w*|nir|insee|ss|vitale|assur[ée]e?\s+social\w*)\b")
_BARCODE_WORDS = r"ean(?:[- ]?1[34])?|gtin(?:[- ]?1[234])?|upc|code[- ]?barres?|code\s+ean"
_NUMBER_SIGN_AT_END = r"[ \t]*(?:(?:n°|no|nº|#|:)[ \t]*)?$"
_EAN_CUE = re.compile(rf"(?i)\b(?:{_BARCODE_WORDS})\b{_NUMBER_SIGN_AT_END}")
_PRODUCT_CUE = re.compile(
    rf"(?i)\b(?:{_BARCODE_WORDS}|r[ée]f(?:[ée]rence)?|article|sku)\b{_NUMBER_SIGN_AT_END}"
)
_EAN_PRINTED = re.compile(r"\d[ ]?\d{6}[ ]?\d{6}")
# Cheap gate before asking libphonenumber (it is the slowest rule).
_PHONE_SHAPED = re.compile(r"\+\d|\b00\d|\b0\d(?:[ .()-]{0,2}\d){8}\b|\b[1-9](?:[ .-]\d{2}){4}\b")
# One separator used throughout ("06/12/34/56/78", "06 12 34 56 78merci"), or "06 : 12 34 56 78":
# consistent grouping keeps dates ("06 12 2023", "01.02.2024 10") out.
_FR_PHONE = re.compile(
    r"(?<![\d/.,])0[1-9](?:(?P<sep>[ ./_-]?)\d{2}(?:(?P=sep)\d{2}){3}"
    r"|\s*:\s*\d{2}(?:[ .]?\d{2}){3})(?![\d/])"
    # One digit at a time ("0 6 1 2 3 4 5 6 7 8"), or the letter O for the zero ("O6 12 …").
    r"|(?<!\d )(?<![\w/.,])0 [1-9](?: \d){8}(?![\d/]| \d)"
    r"|(?<![\w/.,])[Oo][1-9](?P<o>[ .]?)\d{2}(?:(?P=o)\d{2}){3}(?![\d/])"
    # ... or for a zero further on ("06 12 34 56 7O", "06 1O 34 56 78").
    r"|(?<![\w/.,])0[1-9](?P<z>[ .]?)(?=[\dOo. ]{0,12}[Oo])[\dOo]{2}(?:(?P=z)[\dOo]{2}){3}"
    r"(?![\w/])"
)
# "33 6 12 34 56 78": the country code without its "+" is read with the number, which the
# shape of a 9-digit id had then left whole.
_GROUPED_NO_ZERO = re.compile(r"(?:33[ .-]?)?[1-9](?:[ .-]\d{2}){4}")
# A number spelt in words, 0 to 99 ("zéro", "six", "trente-quatre", "soixante et onze",
# "quatre-vingt-dix-huit", Belgian/Swiss "septante"), or a group of 1-2 digits.
_UNIT = r"(?:un|deux|trois|quatre|cinq|six|sept|huit|neuf)"


def _num_word(join: str) -> str:
    """0-99 in words, the parts of a compound joined by `join` ("-" or "-| +")."""
    teen = rf"(?:dix(?:{join})(?:sept|huit|neuf)|dix|onze|douze|treize|quatorze|quinze|seize)"
    return (
        r"(?:z[ée]ro"
        r"|(?:vingt|trente|quarante|cinquante|soixante|septante|octante|huitante|nonante)"
        rf"(?:(?:-et-|\s+et\s+)(?:un|onze)|(?:{join})(?:{teen}|{_UNIT}))?"
        rf"|quatre(?:{join})vingts?(?:(?:{join})(?:{teen}|{_UNIT}))?"
        rf"|{teen}|{_UNIT})"
    )


_NUM_WORD = _num_word(r"-|\s+")
# "zéro quatre vingt …" is 04 20 … as often as 0 80: the second reading splits at spaces.
_NUM_TOKENS = (
    re.compile(rf"(?i)(?:\d{{1,2}}|{_NUM_WORD})(?!\w)"),
    re.compile(rf"(?i)(?:\d{{1,2}}|{_num_word('-')})(?!\w)"),
)
# A run of 5+ such numbers: only then can it spell a phone number (2 digits at a time or 1).
_NUM_RUN = re.compile(
    rf"(?i)(?<![\w.,])(?:\d{{1,2}}|{_NUM_WORD})"
    rf"(?:(?:\s+|\s*[,.-]\s*)(?:\d{{1,2}}|{_NUM_WORD})(?!\w)){{4,}}"
)
_NUM_VALUES = {
    "zéro": 0, "zero": 0, "un": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6,
    "sept": 7, "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13,
    "quatorze": 14, "quinze": 15, "seize": 16, "vingt": 20, "vingts": 20, "trente": 30,
    "quarante": 40, "cinquante": 50, "soixante": 60, "septante": 70, "octante": 80,
    "huitante": 80, "nonante": 90,
}  # fmt: skip
# Without its leading zero ("six douze trente-quatre …"), only right after a phone word.
_PHONE_CUE = re.compile(
    r"(?i)\b(?:t[ée]l(?:[ée]phone)?|portable|mobile|fixe|num[ée]ro|r?appel\w*|joindre|joignable)"
    r"\b(?:-moi)?[\s:.]*(?:(?:le|au|mon|est|c['’]est)\s+)?$"
)
_INTL_PHONE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\d{2,4}){3,5}(?!\d)")
# Between the groups of a phone number as typed or pasted: spaces (the no-break and narrow
# no-break ones of word processors and phones too), or . / - – with spaces around them.
_PH_SPACE = "[ \u00a0\u202f]"
_PH_SEP = rf"(?:{_PH_SPACE}*[./\-\u2013]{_PH_SPACE}*|{_PH_SPACE}+)"
# What may follow a number without it being the start of a longer one: "… 78. 3 jours" ends a
# sentence, "… 78 90" or "… 78-90" continue a list.
_PH_END = rf"(?![\d/]|{_PH_SPACE}*[/\-\u2013]?{_PH_SPACE}*\d|\.\d)"
# A French 10-digit number in the groupings `_FR_PHONE` and libphonenumber leave: "0 612 345
# 678", "0-612-34-56-78", "06 / 12 / 34 / 56 / 78", "06–12–34–56–78", no-break spaces. Groups
# of 2-4 digits after the "0X" (a lone digit is a list: "notez de 0 1 2 3 …"); the digits are
# counted and checked by phonenumbers, and dates ("01/02/2024 10h") are left (`_DATE_LIKE`).
# A line break may split the groups once ("06 12 34\n56 78": a wrapped e-mail or form field),
# after a separator too.
_PH_SEP_NL = rf"(?:{_PH_SEP}|{_PH_SPACE}*[./\-\u2013]?{_PH_SPACE}*\n{_PH_SPACE}*)"
_FR_PHONE_GROUPED = re.compile(
    rf"(?<![\w/.,+])0(?:{_PH_SEP}[1-9]\d{{2,3}}|[1-9]\d{{0,3}})(?:{_PH_SEP_NL}\d{{2,4}}){{1,4}}"
    rf"{_PH_END}"
)
# Two digits at a time with one odd separator throughout ("06,12,34,56,78", "06 ; 12 ; …");
# checked as `_FR_PHONE_GROUPED` is (10 digits, the plan, no date nor size run).
_FR_PHONE_ODD = re.compile(
    rf"(?<![\w/+])(?<!\d{_ODD_SEP})(?<!\d{_ODD_SEP}[ \t])"
    rf"0[1-9](?P<s>[ \t]?{_ODD_SEP}[ \t]?)\d{{2}}(?:(?P=s)\d{{2}}){{3}}"
    rf"(?!\d|[ \t]?{_ODD_SEP}[ \t]?\d)"
)
_SIZE_CUE = re.compile(r"(?i)\b(?:tailles?|pointures?|sizes?)\s*:?\s*$")
_DATE_LIKE = re.compile(r"[0-3]?\d[ ./-]+[01]?\d[ ./-]+(?:19|20)\d{2}\b")
# Belgian landlines written nationally: "02 512 34 56" (Brussels, Liège: 0X XXX XX XX),
# "010 23 45 67" (0XX XX XX XX), "04/123.45.67". Nine digits, which no French number has;
# mobiles (04XX XX XX XX) have ten and are the French rules' already. See `_be_phone`.
_BE_PHONE = re.compile(
    rf"(?<![\w/.,+])0(?:[1-9]{_PH_SEP}?\d{{3}}|[1-9]\d{_PH_SEP}?\d{{2}})"
    rf"(?:{_PH_SEP}\d{{2}}){{2}}{_PH_END}"
)
# What makes digits right before them a phone number ("tel", "appelez le", "joignable au",
# "au") or an order reference ("commande", "dossier n°").
_BE_PHONE_CUE = re.compile(
    r"(?i)(?:\b(?:t[ée]l(?:[ée]phone)?|gsm|portable|mobile|fixe|num[ée]ro|r?appel\w*|joindre"
    r"|joignable|contact\w*|fax)\b(?:-moi)?[\s:.]*(?:(?:le|au|mon|est|c['’]est)\s+)?|\bau\s+)$"
)
_ORDER_CUE = re.compile(
    r"(?i)\b(?:commande|cde|cmd|order|facture|colis|suivi|dossier|ticket|réf(?:érence)?|ref)"
    r"(?:\s*(?:n°|no|num(?:éro)?|nº|#|:))?\s*$"
)

# --- order references ------------------------------------------------------------------------
# The reference follows its keyword on the same line: across a line break "colis" ends one
# record of a quarantined CSV row and "id10x" starts the next (its id, kept for the audit).
# Customer, member and contract numbers ("n° client 123456", "numéro d'adhérent AB12345") are
# account references of the same kind: one person's, where an order is one purchase's.
_ORDER_KEYWORD = re.compile(
    r"(?i)\b((?:commande|cde|cmd|order|facture|colis|suivi|dossier|ticket|réf(?:érence)?|ref"
    r"|client|adh[ée]rent|abonn[ée]|contrat|fid[ée]lit[ée])"
    r"(?:[ \t]+(?:n°|no|num(?:éro)?|nº|#)[ \t]*|[ \t]*(?:n°|nº|#)[ \t]*|[ \t]*:[ \t]*"
    # "mon numéro client est 123456", "ma commande c'est AB1234": the reference as a sentence.
    r"|[ \t]+(?:est|c['’]est)[ \t]*(?::[ \t]*)?|[ \t]+))"
    # Not an hour span ("service client 24h24"), a span of years ("contrat 2023-2024") or a
    # count ("carte fidélité 15000 points"): "client", "contrat" and "fidélité" are words of
    # every review, followed by such figures far more often than by a reference.
    r"(?!\d{1,2}h\d{0,2}\b|(?:19|20)\d{2}-(?:19|20)\d{2}\b)"
    r"(?=[A-Z0-9-]*\d)([A-Z0-9][A-Z0-9-]{4,})\b"
    r"(?![ \t]*(?:points?|fois|ans|mois|jours|euros?)\b|[ \t]*€)"
)
# Identity documents after their name: "passeport 12AB34567" (2 digits, 2 letters, 5 digits),
# "CNI X4RTBPFW4" (9 characters since 2021) or 12 digits before, "permis n° 12AB34567890",
# "carte d'identité n° …", "titre de séjour : …". The number is one token of 6-18 letters and
# digits with a digit in it ("passeport perdu" stays), or groups of capitals and digits
# ("12 AB 34567"); product references without such a word are left to the other rules.
_ID_DOC = re.compile(
    r"(?i:\b(?:passeports?|passport|cni|carte[ \t]+(?:nationale[ \t]+)?d['’][ \t]?identit[ée]"
    r"|pi[èe]ce[ \t]+d['’][ \t]?identit[ée]|permis(?:[ \t]+(?:de[ \t]+)?conduire)?"
    r"|titre[ \t]+de[ \t]+s[ée]jour)"
    r"(?:[ \t]+(?:n°|no|nº|num(?:[ée]ro)?|#)[ \t]*|[ \t]*(?:n°|nº|#)[ \t]*|[ \t]*:[ \t]*|[ \t]+))"
    r"((?=[A-Za-z]{0,18}\d)[A-Za-z0-9]{6,18}+(?![\w-])"
    r"|(?=[A-Z ]{0,18}\d)[A-Z0-9]{1,12}+(?:[ -][A-Z0-9]{1,12}+){1,4}+(?![\w-]))"
)
# Licence plates (personal data: they name the car's keeper). The SIV form written the
# official way ("AB-123-CD", capitals and dashes) anywhere; other spellings ("AB 123 CD",
# "ab-123-cd", "AB123CD") and the former FNI plates ("1234 AB 75") only right after a
# registration word (`_PLATE_CUE`): "plaque de 100 kg" has the shape, and a plate is a hot
# plate as often. Letters I, O and U are never used.
_PLATE_LETTER = "A-HJ-NP-TV-Z"
_PLATE = re.compile(
    rf"(?<![\w-])(?:[{_PLATE_LETTER}]{{2}}-\d{{3}}-[{_PLATE_LETTER}]{{2}}"
    rf"|(?P<cued>[{_PLATE_LETTER}]{{2}}[ -]?\d{{3}}[ -]?[{_PLATE_LETTER}]{{2}}"
    rf"|(?i:[a-hj-np-tv-z]{{2}}-\d{{3}}-[a-hj-np-tv-z]{{2}})"
    rf"|\d{{1,4}}[ -]?[{_PLATE_LETTER}]{{1,3}}[ -]?(?:\d{{2}}|2[AB]|97[1-6])))(?![\w-])"
)
_PLATE_CUE = re.compile(
    r"(?i)\b(?:immatricul\w*|immat|plaques?|v[ée]hicule|voiture)\b"
    r"(?:\s+(?:d['’]\s*immatriculation|min[ée]ralogique))?[ \t]*(?:(?:n°|:|est|c['’]est)[ \t]*)?$"
)
# A product's code has a plate's shape ("modèle AB-123-CD", "réf. FG-456-HJ"): after a product
# word it is no plate (after "réf" `_ORDER_KEYWORD` has already taken it as a reference).
_PLATE_PRODUCT_CUE = re.compile(
    r"(?i)\b(?:mod[èe]les?|r[ée]f(?:[ée]rences?)?|article|sku|produit|code[ \t]+(?:produit|article)"
    r"|pi[èe]ce)\b\.?[ \t]*(?:(?:n°|no|nº|#|:)[ \t]*)?$"
)
# "voiture 206 CC 75 000 km", "véhicule 3008 GT 12 mois": a car model and its trim, then a
# count, have the old FNI plate's shape. A plate is followed by no figure nor unit, and after
# "voiture"/"véhicule" (words of a model as much as of a plate) a model number of Peugeot's
# shape (206, 308, 3008) with a trim's letters is the model.
_PLATE_COUNT_AFTER = re.compile(
    r"[ \t]*(?:[.,]?\d|(?:kms?|ans?|mois|jours?|semaines?|ch|cv|chevaux|€|euros?)\b)", re.IGNORECASE
)
_CAR_MODEL = re.compile(r"[1-9]00?[0-9][ -]?(?:CC|SW|GT|RC|RS|XS|XT|XR|XE|SR|GL|GLX|XAD)\b")
_PLATE_STRONG_CUE = re.compile(r"(?i)\b(?:immatricul\w*|immat|plaques?)\b")
_HASH_ID = re.compile(r"(?<!\w)#\s?(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{5,}\b")
# Not 1234567,89; letters glued before the digits are the same reference ("12AB34567890" had
# left "12AB").
_LONG_DIGITS = re.compile(r"(?<![\d,.])(?:\b\d{0,4}[A-Za-z]{1,4}(?=\d{7}))?\d{7,}(?!\d|[,.]\d)")

# --- names and addresses ---------------------------------------------------------------------
_UPPER = "A-ZÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ"
_WORD = r"[\w][\w'’-]*"
_NAME_WORD = rf"[{_UPPER}][\w'’-]*"
# "Melle" is how "Mlle" is often spelt; "Maître" (a lawyer) only before a capital: "maître
# d'hôtel". "Mr. et Mme Dupont": "et" is no name, and must leave "Mme Dupont" to be read.
# "Me", Maître abbreviated, only before a capitalised word (the pronoun: "il me dit"), and
# then only before a known name (`_honorific`): "Me voilà", "Me Faire rembourser" stay.
# Particles that open a surname: "Le Bris", "Ben Ali", "Da Silva", "Van den Berg", "De La Tour".
_PARTICLE_WORDS = (
    "Le|La|De|Du|Des|Da|Di|Dos|Das|Del|Della|Ben|Bin|Ibn|El|Al|Van|Von|Der|Den|Ter|Ten"
    "|van|von|der|den|ter|ten"
)
_SURNAME_PARTICLES = frozenset(_PARTICLE_WORDS.split("|"))
# In lower case after a title, "M. de Villiers", "Mme de la Fontaine", "Mme du Pont": the name
# opens with the particle. After a name they are a place ("Mme Dupont de Lyon", `_honorific`).
_LOWER_PARTICLES = frozenset(["de", "du", "des", "la", "le", "da", "di", "dos", "del", "della"])
# "le monsieur de …", "une dame de …": the noun, no title.
_ARTICLE_BEFORE = re.compile(r"(?i)\b(?:le|la|un|une|ce|cette|du|au)[ \t]+$")
_NAME_TAIL = (
    rf"(\s+(?:(?:{_PARTICLE_WORDS}|{'|'.join(sorted(_LOWER_PARTICLES))})\s+)*{_NAME_WORD})?"
)
_HONORIFIC = re.compile(
    r"(?<![\w.])(?:M\.|Mr\.?|MM\.|Pr\.|(?:Ma[îi]tre|Me)(?=\s+[A-ZÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ])"
    r"|(?i:mmes?\.?|m(?:e|)lle\.?|monsieur|madame|mademoiselle|docteur|dr\.?|professeur))"
    r"\s+(?!(?i:et|ou)\s)"
    # "M. Van der Berg", "Mme Aïcha Ben Ali" (had kept "Ali"), "M. Karim El Amrani".
    rf"({_WORD}){_NAME_TAIL}"
)
# "M" without its dot is a clothing size as often ("taille M Noir"): a title only after a
# greeting, thanks or a sign-off ("Bonjour M Dupont", "Merci M Martin", "Cordialement, M
# Durand") or joined to another title ("Mme et M Dupont"); the name groups are `_HONORIFIC`'s.
# The greetings that open a message, in full and in chat spelling (`_HONORIFIC_M`, `_GREETING`).
_SALUTATIONS = r"bonjour|bonsoir|bjr|bsr|slt|salut|coucou|hello"
_GREETING_WORDS = (
    rf"{_SALUTATIONS}|attention\s+de"
    # "Cher M Dupont" opens a letter, "pas cher M Noir" is a price and a size: after a word,
    # "cher" is the adjective (a greeting before it still makes it one: "Bonjour cher M …").
    r"|(?:(?:bonjour|bonsoir|hello)[ \t]+|(?<![\w'’][ \t]))(?:cher|ch[èe]re)|merci"
    r"(?:\s+(?:beaucoup|encore|aussi|également|infiniment|bien))?(?:\s+[àa])?"
)
_HONORIFIC_M = re.compile(
    # After a greeting, in lower case too: "bonjour m. dupont", "merci mr martin".
    rf"(?:(?i:\b(?:{_GREETING_WORDS}|cordialement|salutations|sign[ée]))[ \t]*[,:]?[ \t]*"
    r"(?:M|m\.?|mr\.?)|\bMmes?\.?[ \t]+et[ \t]+M)[ \t]+(?!(?i:et|ou)\s)"
    rf"({_WORD}){_NAME_TAIL}"
)
_ROLE_WORDS = (
    r"(?:livreur|livreuse|conseiller|conseillère|technicien|technicienne|vendeur|vendeuse|"
    r"chauffeur|agent|opérateur|opératrice|responsable|gérant|gérante|coursier|coursière|"
    r"facteur|factrice|caissier|caissière|hôtesse|commercial|commerciale|serveur|serveuse|"
    r"manager|directeur|directrice|interlocuteur|interlocutrice)"
)
_TITLES = re.compile(
    rf"(?i:{_ROLE_WORDS}|maire|président|présidente|préfet|préfète|ministre|juge|député|députée)"
)
# "le livreur", "votre conseillère", "de la vendeuse": a role word with its article.
_ROLE_ARTICLE = r"\b(?:le|la|l['’]|un|une|votre|notre|mon|ma|du|au|de\s+la|ce|cette)\s*"
_ROLE_PREFIX = rf"(?i:{_ROLE_ARTICLE}{_ROLE_WORDS})"
_ROLE = re.compile(_ROLE_PREFIX + rf"(?:\s+|\s*[,(]\s*)({_NAME_WORD})(\s+{_NAME_WORD})?")
_PLACE_BEFORE = re.compile(
    r"(?i:\b(?:à|a|au|aux|de|du|des|en|sur|chez|vers|depuis|dans|près|pour|par|d['’]))\s*$"
)
# A name in apposition after the role and its company: "le livreur de DPD, Karim, a jeté …".
# The closing comma or bracket is required: "le livreur de DPD, Impossible à joindre" is not one.
_ROLE_OF = re.compile(
    rf"(?i:{_ROLE_ARTICLE}{_ROLE_WORDS}\s+(?:de|du|chez|d['’])\s*)"
    rf"(?:[\w&.'’-]+\s+){{0,2}}?[\w&.'’-]+"
    rf"\s*[,(]\s*({_NAME_WORD})(\s+{_NAME_WORD})?(?=\s*[,)])"
)
# Staff thanked by first name: "merci à Nathalie qui …", "merci à Bruno et Simon". Shops are
# thanked the same way ("merci à Oliquide"), so one capitalised word alone is a name only when
# what follows speaks of a person; two or more joined by "et" are. All-caps, CamelCase and
# two-word names ("Pinot Bleu", "Vert Tige") are brands as often: left to NER.
_LOWER = "a-zàâäçéèêëîïôöùûüÿ"
# Followed by (?!\w) where it stands alone: "AliExpress" would read as "Ali" + "Express".
_TITLE_WORD = rf"[{_UPPER}][{_LOWER}]+(?:-[{_UPPER}][{_LOWER}]+)?"
_THANKS = re.compile(
    r"(?i:\bmerci(?:\s+(?:beaucoup|encore|aussi|également|infiniment|bien))?\s+[àa]\s+)"
    rf"({_TITLE_WORD}(?:(?:\s*,\s*{_TITLE_WORD})*\s+(?i:et)\s+(?:(?i:à)\s+)?{_TITLE_WORD})?)"
    rf"(?![\w'’]|\s*[{_UPPER}])"
)
_THANKS_PERSON = re.compile(
    r"(?i)\s*,?\s*(?:qui\b|pour\s+(?:son|sa|ses)\b|du\s+(?:service|sav|support)\b|d['’]avoir\b"
    rf"|de\s+(?:nous|m['’]|son|sa|ses)\b|(?:notre|votre)\s+{_ROLE_WORDS}\b)"
)
_THANKS_SPLIT = re.compile(r"(?i)\s*,\s*|\s+et\s+(?:à\s+)?")
# A role opening a sentence, without its article: "Vendeuse Léa au top !".
_ROLE_OPENING = re.compile(
    rf"(?:^|(?<=[.!?;]\s))(?i:{_ROLE_WORDS})\s+({_NAME_WORD})(\s+{_NAME_WORD})?"
)
# A capitalised word right before its role ("Karim le livreur", "Nathalie, la conseillère"):
# only a candidate, since "Enfin le livreur" has the same shape; NER must see a proper noun.
# The name is bounded (64) and possessive: each capital of "AAAA…" is a start, and read the
# rest of the word again.
_NAME_BEFORE_ROLE = re.compile(
    rf"([{_UPPER}][\w'’-]{{0,63}}+)(?:\s*,\s*|\s+)"
    rf"(?i:(?:le|la|l['’]|notre|votre|mon|ma)\s*{_ROLE_WORDS})\b"
)
_STREET = (
    r"(?:rue|r\.|avenue|av\.?|boulevard|bd|place|pl\.|chemin|allée|allee|impasse|quai|route|rte|"
    r"cours|square|résidence|lotissement|voie|passage|faubourg|fbg|sentier|hameau|promenade|"
    r"esplanade|montée|traverse|rond-point|cité|clos|ruelle|venelle|parvis|sente)"
)
# Street types that are also things counted ("3 cours de yoga.", "1 place de libre."): with
# lower-case words after them, an address only before a postcode.
_STREET_COUNTED = r"(?:cours|place|voie|passage)\b"
_NUMBER = r"\b\d{1,4}(?:\s?(?:bis|ter|b))?,?\s+"
_PARTICLE = r"(?:(?i:de|des|du|la|le|les|aux|au|sur|en)\s+|(?i:d|l)['’])"
# A quantity's unit after a number of a postcode's shape: "12000 BTU", "75000 KM", "5000 Mah".
_MEASURE_UNIT = (
    r"(?i:btu|mah|k?wh|kw|w|watts?|v|volts?|kms?|kg|mm|cm|m|ml|l|litres?|euros?|eur|usd|chf|"
    r"francs?|dollars?|[kmgt]o|[kmgt]b|[kmg]?hz|lumens?|lm|pts?|points?|miles|k?cal|calories|"
    r"tr|rpm|dpi|mp|ppm)\b"
)
# A town typed in lower case after its postcode ("75011 paris", "13008 marseille", "aix-en-
# provence"): not a unit, nor a word that goes on the sentence ("75011 depuis 3 ans"), nor
# what is counted ("45000 foyers", "25000 heures").
_LOWER_TOWN = (
    rf"(?!{_MEASURE_UNIT}|(?:et|ou|mais|depuis|alors|pour|par|avec|sans|le|la|les|de|des|du|à"
    r"|au|aux|en|je|j|il|elle|on|nous|vous|qui|que|est|était|a|foyers|heures|personnes"
    r"|habitants|abonnés|exemplaires|fois|pas|vues|clients|unités|pièces|colis|mètres"
    r"|kilomètres|grammes|tonnes|ans|jours|mois|années|articles|produits|commandes|avis|votes"
    r"|likes|followers|signatures|salariés|emplois|places|morts|victimes|livres"
    # What is said of the postcode itself: "code postal 75011 erroné", "cp 75011 mal saisi".
    r"|mal|bien|bon|faux|fausse|erron\w*|incorrect\w*|correct\w*|invalide|inconnu\w*"
    r"|inexistant\w*|exact\w*|incomplet\w*|complet\w*|manquant\w*)\b)"
    rf"[{_LOWER}]{{2,}}+(?:-[{_LOWER}]++)*+"
)
_ADDRESS = re.compile(
    rf"(?i:{_NUMBER}{_STREET}\b)"
    rf"(?:\s+(?:d['’]|l['’])?{_WORD}){{1,4}}?"
    rf"(?:\s*,)?\s+(\d{{5}})(?:\s+{_NAME_WORD}(?:[ -]{_NAME_WORD}){{0,2}}|[ \t]+{_LOWER_TOWN})?"
    rf"|(?i:{_NUMBER}(?!{_STREET_COUNTED}){_STREET}\b)"
    rf"(?:(?:\s+(?:d['’]|l['’])?{_WORD}){{1,4}}?(?=\s*(?:[,.;:!?)]|$))"
    # Typed in lower case, the street's name still follows its particle: "12 rue des lilas
    # alors que", "3 avenue de la république depuis".
    rf"|\s+{_PARTICLE}+[{_LOWER}][\w'’-]*)"
)
# A number, a street type and a capitalised name without a postcode: "12 rue des Lilas alors
# que...", "3 avenue de la République et ...", "5, rue de la Paix à Paris"; "Grande Rue" is
# a name in itself.
_MAIN_STREET = r"(?:grande?[- ]rue|grand['’]rue)\b"
_ADDRESS_NAMED = re.compile(
    rf"(?i:{_NUMBER})(?:(?i:{_STREET})(?:\s+{_PARTICLE}*{_NAME_WORD}){{1,5}}|(?i:{_MAIN_STREET}))"
    rf"(?:(?:\s*,)?\s+\d{{5}}(?:\s+{_NAME_WORD}(?:[ -]{_NAME_WORD}){{0,2}}|[ \t]+{_LOWER_TOWN})?)?"
)
# Names written in lower case are read only where a known first name (`nlp/text/names.py`)
# stands in a name's place: after a role ("le livreur karim a jeté …"), after "j'ai eu" /
# "j'ai parlé à", after the cues below, before a role, or as a compound of two first names
# ("jean-pierre dupont"). A last name right after is taken with it when it is a known one.
_LOWER_WORD = rf"[{_LOWER}][{_LOWER}'’-]*"
_ROLE_LOWER = re.compile(
    _ROLE_PREFIX + rf"(?:\s+|\s*[,(]\s*)({_LOWER_WORD})(?:\s+({_LOWER_WORD}))?"
)
# Capitalised too ("j'ai eu Kevin au téléphone"): NER misses a lone first name there, and the
# name must be a known one either way.
_SPOKE_TO = re.compile(
    r"(?i:\bj['’]ai\s+(?:eu|parlé\s+(?:à|avec)|appelé)|\bje\s+suis\s+tomb[ée]e?\s+sur)\s+"
    rf"({_LOWER_WORD}|{_TITLE_WORD})(?!\w)(?:\s+({_LOWER_WORD}|{_NAME_WORD}))?"
)
# Other places a name stands, in any case: the writer introducing themself ("bonjour, je suis
# jean dupont", "moi c'est sophie"), a relative ("mon fils kevin", "ma femme Sylvie") and
# staff named by what they did ("livrée par Kevin", "très bien conseillé par Sophie"). NER
# missed the lone capitalised ones, and nothing read them in lower case; a known first name is
# required ("je suis ravie", "livré par Chronopost", "ma fille adore" stay).
_FAMILY_WORDS = (
    r"(?:fils|fille|femme|mari|époux|épouse|conjointe?|compagnon|compagne|copain|copine|mère"
    r"|père|maman|papa|frère|sœur|soeur|grand-mère|grand-père|belle-mère|beau-père|enfant"
    r"|voisine?|amie?|neveu|nièce|oncle|tante|cousine?|collègue)"
)
_NAME_PLACE = re.compile(
    r"(?i:\bje\s+suis|\bmoi\s*,?\s+c['’]est|\b(?:mon|ma|notre)\s+" + _FAMILY_WORDS + r"\s*,?"
    r"|\b(?:livr|servi|accueilli|conseill|aid|dépann|renseign|reçu|pris\s+en\s+charge)\w*"
    r"\s+par)\s+"
    rf"({_LOWER_WORD}|{_TITLE_WORD})(?!\w)(?:[ \t]+({_LOWER_WORD}|{_NAME_WORD}))?"
)
# The capitalised cues' shapes, in lower case: thanks ("merci à nathalie"), sign-offs
# ("cordialement, marie lefèvre"), "affaire à", "s'appelait", a role opening a sentence.
_LOWER_CUE = re.compile(
    r"(?i:\bmerci(?:\s+(?:beaucoup|encore|aussi|également|infiniment|bien))?(?:\s+[àa])?"
    r"|\b(?:cordialement|salutations|bien\s+[àa]\s+vous|sign[ée])\s*[,:]?"
    r"|\baffaire\s+[àa]|\bs['’]appel(?:le|ait|aient|lent))\s+"
    rf"({_LOWER_WORD})(?:\s+({_LOWER_WORD}))?"
    rf"|(?:^|(?<=[.!?;]\s))(?i:{_ROLE_WORDS})\s+({_LOWER_WORD})(?:\s+({_LOWER_WORD}))?"
)
# A greeting before a first name, in any case: "bonjour jean,", "Bonsoir Karim, merci",
# "salut marc". NER leaves a lone name after a greeting as often as it takes it, and the rules
# had no greeting cue; the name must be a known first name ("Bonjour à tous", "bonjour service
# client", "Bonjour Orange" stay), a known or capitalised surname right after goes with it.
_GREETING = re.compile(
    rf"(?i:\b(?:{_SALUTATIONS}|cher|ch[èe]re)\b)[ \t]*,?[ \t]*"
    rf"({_LOWER_WORD}|{_TITLE_WORD})(?!\w)(?:[ \t]+({_LOWER_WORD}|{_NAME_WORD}))?"
)
# Where a name ends: punctuation, the end of the line, or the writer going on ("je", "j'ai").
_NAME_ENDS = re.compile(r"[ \t]*(?:[,.;:!?)\r\n]|$)|[ \t]+(?:je|j['’]|nous|moi)\b", re.IGNORECASE)
# "le chauffeur s'appelle Karim": `_LOWER_CUE` reads lower case only and `_NAME_CUE` wants
# "il"/"elle" before it (it takes any word); capitalised, a known first name ("l'appli
# s'appelle Lydia" too: a brand as often, the lesser loss), with its surname.
_CALLED = re.compile(
    rf"(?i:\bs['’]appel(?:le|ait|aient|lent))\s+({_TITLE_WORD})(?!\w)(?:\s+({_NAME_WORD}))?"
)
# A known first name right before its role or service: "karim le livreur", "sophie du
# service client", "Kevin du SAV m'a répondu" (NER leaves a name opening its sentence); not
# in capitals, a surname as often ("M.-C. LEROY du SAV").
_LOWER_BEFORE_ROLE = re.compile(
    rf"(?<![\w'’-])({_LOWER_WORD}|{_TITLE_WORD})(?:\s*,\s*|\s+)"
    rf"(?i:(?:le|la|l['’]|notre|votre|mon|ma)\s*{_ROLE_WORDS}\b|du\s+(?:service|sav|support)\b)"
)
# Capitalised too: "Jean-Pierre a été top" opens its sentence, where NER leaves a lone name.
_COMPOUND_FIRST = re.compile(
    rf"(?<![\w'’-])([{_UPPER}{_LOWER}][{_LOWER}]+)-([{_UPPER}{_LOWER}][{_LOWER}]+)(?![\w'’-])"
    rf"(?:\s+({_WORD}))?"
)
# A capitalised name signing off, on the same line or the next: "Cordialement,\nSophie
# Martin". NER leaves a lone word opening a line; a known first name is required here.
_SIGN_OFF_WORDS = (
    r"(?i:\b(?:cordialement|salutations(?:\s+distinguées)?|bien\s+[àa]\s+vous|sign[ée]"
    r"|sincèrement|bonne\s+(?:journée|soirée)|merci\s+d['’]avance))\s*[,:.!]?\s+"
)
_SIGN_OFF = re.compile(_SIGN_OFF_WORDS + rf"({_NAME_WORD})(?:\s+({_NAME_WORD}))?")
# An initial and a surname signing off ("Salutations,\nJ. Martin", "Cordialement J.Dupont"):
# no first name to look up, but after a sign-off a capital, its dot and a capitalised word
# are a signature. Two letters at least: "P.S. Le colis…" is no name. A second capitalised
# word on the same line is the surname after a first name ("M.Michel MATHELIN").
_SIGN_OFF_INITIAL = re.compile(
    _SIGN_OFF_WORDS + rf"([{_UPPER}]\.[ \t]?)([{_UPPER}][\w'’]+(?:-[{_UPPER}][\w'’]+)?)"
    rf"(?:[ \t]+([{_UPPER}][\w'’]+(?:-[{_UPPER}][\w'’]+)?))?(?![\w.'’-])"
)
# Words that introduce a name, whatever its case: "je m'appelle jean dupont", "un certain Kevin".
_NAME_CUE = re.compile(
    # "mon nom est jean martin" as well, in any case; "mon prénom est Kevin", "mon nom de
    # famille est Kowalczyk", "mon nom, c'est Dupont".
    r"(?i:\b(?:je\s+m['’]appelle|(?:il|elle)\s+s['’]appel(?:l?e|ait)"
    r"|mon\s+(?:pr[ée]nom|nom(?:\s+de\s+famille)?)\s*,?\s+(?:est|c['’]est))"
    r"\s+)"
    rf"({_WORD})(?:\s+({_WORD}))?"
    # "un certain poids", "une fonction appelée turbo": these cues take capitalised names only.
    r"|(?i:\b(?:un\s+certain|une\s+certaine|(?:nomm|prénomm)ée?)\s+)"
    rf"({_NAME_WORD})(?:\s+({_NAME_WORD}))?"
)
# Places named without a street number: "Résidence Les Pins", "lieu-dit La Croix", and the
# postal boxes "BP 123" / "CS 70001" of business addresses.
_NAMED_PLACE = re.compile(
    rf"(?i:\b(?:résidence|residence|lieu[- ]?dit|hameau|lotissement))"
    rf"(?:\s+{_PARTICLE}*{_NAME_WORD}){{1,3}}"
    r"|\b(?:BP|CS)\s?\d{2,6}\b"
)
# Labelled fields: "nom : Dupont", "prénom: Jean".
# "Nom et prénom : Jean Kowalczyk" gives both: a second word on the same line is taken too,
# capitalised after a capitalised one or a known name in lower case ("nom : kowalczyk
# sophie"), unless it labels the next field ("Nom : Dupont Prénom : Jean").
_NAME_FIELD = re.compile(
    rf"(?i:\b(?:nom|pr[ée]nom|nom\s+de\s+famille)\s*:\s*)({_WORD})"
    rf"(?:[ \t]+({_WORD})(?![\w'’-]|[ \t]*:))?"
)
# A postal code and a capitalised town alone ("75011 Paris", "69003 Lyon").
# Not a quantity with its unit, capitalised or shouted: "12000 BTU", "75000 KM", "5000 Mah".
_POSTCODE_TOWN = re.compile(
    rf"\b(?:0[1-9]|[1-8]\d|9[0-8])\d{{3}}\s+(?!{_MEASURE_UNIT}){_NAME_WORD}(?:-{_NAME_WORD})*"
)
# In lower case ("13008 marseille") a count has the shape too ("des 25000 heures"): a town
# only where an address stands, after a word of where one lives or is delivered ("j'habite",
# "livré au", "adresse :", "cp") or alone on its line, as an address block ends.
_POSTCODE_TOWN_LOWER = re.compile(
    rf"(?<![\w,.])(?:0[1-9]|[1-8]\d|9[0-8])\d{{3}}[ \t]+({_LOWER_TOWN})"
    r"(?:[ \t]+cedex(?:[ \t]+\d{1,2})?)?(?![\w'’-])"
)
_TOWN_CUE = re.compile(
    r"(?i)(?:\b(?:habit\w*|domicili\w*|r[ée]sid\w*|adresse|livr\w*|envoy\w*|exp[ée]di\w*"
    r"|code[ \t]+postal|cp|ville|commune|à|au|sur|vers)|<ADDRESS>)[ \t]*[:,]?[ \t]*$"
)
_LINE_START = re.compile(r"(?:^|\n)[ \t]*$")
_LINE_END = re.compile(r"[ \t]*[.!]?[ \t]*(?:\r?\n|$)")
# Compound first names by their initials and a surname: "J-P Dupont", "J.-P. Dupont",
# "M.-C. LEROY". The surname is capitalised and no common word ("de A-Z Livraison").
_INITIALS_NAME = re.compile(rf"(?<![\w.'’-])[{_UPPER}]\.?-[{_UPPER}](?:\.\s*|\s+)({_NAME_WORD})")
# The same initials without their dash: "J.P. Dupont", "J. P. Dupont" (a capitalised surname
# of two letters or more: "S.V.P. Merci" is none), and "JP Dupont" (two capitals, then a known
# last name only: "ST Jacques", "TP Link", "XL Donc" are written so). Not "P.S. Le colis", "N.B.
# Attention", nor the bank "J.P. Morgan".
_INITIALS_PAIR = re.compile(
    rf"(?<![\w.'’-])([{_UPPER}])(?:\.[ \t]?([{_UPPER}])\.[ \t]*|([{_UPPER}])[ \t]+)"
    rf"([{_UPPER}][\w'’-]+)"
)
_NOT_INITIALS = frozenset(
    ["PS", "NB", "OK", "JO", "US", "UK", "SA", "ST", "TV", "PC", "CB", "AR", "RH", "PV", "BD"]
    + ["CD", "LA", "LE", "DE", "DU", "EN", "ET", "OU", "AU", "UN", "MA", "SE", "CE", "NE", "ON"]
    + ["IL", "JE", "TU", "ME", "TE", "NI", "SI", "MR", "MM", "DR", "PR"]
)
# The initials of the usual compound first names (Jean-Pierre, Jean-Marc, Marie-Claire,
# Pierre-Yves…): before a capitalised surname in no list ("JP Kowalczyk", "MC Nowak") they are
# a person; other capital pairs before an unknown word are brands as often ("TP Link").
_FIRST_NAME_INITIALS = frozenset(
    ["JP", "JM", "JL", "JC", "JF", "JB", "JY", "JJ", "JR", "JD", "JG", "JN", "JH", "JA"]
    + ["MC", "MF", "MH", "ML", "MJ", "MT", "MO", "PY"]
)
# Thanks shouted or capitalised, without a person cue: "MERCI KARIM !!!", "merci à SOPHIE",
# "Merci Tony". Shops are thanked the same way ("MERCI A VINTAGE", "Merci Oliquide"), so the
# word must be a known first name (`nlp/text/names.py`), as in lower case; so must each of
# those joined to it ("Merci Rémy et Daniel", "MYRIAM ET CORALIE", "Martine & Denis").
_THANKS_NAME = re.compile(
    r"(?i:\bmerci(?:\s+(?:beaucoup|encore|aussi|également|infiniment|bien))?(?:\s+[àa])?)\s+"
    rf"([{_UPPER}][\w'’-]*)(?:\s+(?!(?i:et)\s)([{_UPPER}][\w'’-]*))?"
    rf"((?:\s*(?:,|&|\s(?i:et)\s)\s*(?:(?i:à)\s+)?[{_UPPER}][\w'’-]*){{0,5}})"
)
_THANKS_MORE = re.compile(rf"(\s*(?:,|&|\s(?i:et)\s)\s*(?:(?i:à)\s+)?)([{_UPPER}][\w'’-]*)")
# After "Dr", a brand: "Dr Martens", "Dr. Oetker" (the title before an entity, or in it).
_DOCTOR = re.compile(r"(?i)\b(?:dr\.?|docteur)\s*$")
_DOCTOR_START = re.compile(r"(?i)(?:dr\b\.?|docteur\b)\s*")
# A surname opening with a particle after a name the rules or NER took ("<PERSON> Le Bris" of
# "Jean-Yves Le Bris", "<PERSON> Ben Ali", "<PERSON> Da Silva"): a particle is a common word
# ("Le") or read as the surname itself ("Mohamed Ben" had left "Ali"), so the surname was kept.
_PERSON_PARTICLE = re.compile(
    rf"<PERSON>((?:[ \t]+(?:{_PARTICLE_WORDS})){{1,3}}[ \t]+({_NAME_WORD}))(?!['’])"
)
# Towns that open with "Le" / "La", named after a person as often ("Olivier Falorni La
# Rochelle", a research tweet): the place, not the surname.
_PARTICLE_TOWNS = frozenset(
    ["rochelle", "mans", "havre", "défense", "baule", "ciotat", "réunion", "seyne", "puy"]
    + ["touquet", "creusot", "cannet", "teste", "roche-sur-yon", "garenne-colombes"]
)
# Season's greetings and shopping days, capitalised: spaCy's small model tags "Joyeuses
# Pâques", "Bonne Année", "Saint-Valentin" as persons, and a compound first name took the
# greeting after it for its surname ("Jean-Marc Joyeuses Pâques").
_FETE = r"f[êe]tes?(?:[ \t]+des[ \t]+(?:m[èe]res|p[èe]res|grands[ -]m[èe]res))?"
_HOLIDAY = re.compile(
    r"(?i)\b(?:(?:joyeu(?:x|se|ses)|bonnes?|bon|heureu(?:x|se|ses))[ \t]+"
    rf"(?:no[ëe]l|p[âa]ques|{_FETE}|ann[ée]e|an|anniversaire|saint-[\w-]+|ramadan|a[ïi]d"
    r"|hanouk?ka|halloween|r[ée]veillon)"
    rf"|{_FETE}|saint-valentin|black[ \t]+friday|cyber[ \t]+monday|nouvel[ \t]+an)(?![\w-])"
)
# A capitalised word that does not open a sentence: only then is NER worth running. After a
# placeholder too ("commande <ORDER> Karim a été super", "le <PHONE> Nathalie"): the gate had
# stayed shut there, and the name was stored.
_MID_CAPITAL = re.compile(rf"(?<=[\w,;:)’'>] )[{_UPPER}][a-zàâäçéèêëîïôöùûüÿ-]+\b(?!['’])")

# Titles NER puts inside a PER entity ("Mme Martin"): kept before the name, as the rules keep
# them ("Bonjour Mme <PERSON>", not "Bonjour <PERSON> <PERSON>"). Not words that are never names:
# a title still opens the NER gate for what follows it ("Mme C. Lecomte").
_NER_TITLES = frozenset(
    ["m", "m.", "mme", "mme.", "mmes", "mlle", "mlle.", "melle", "mr", "mr.", "mrs", "ms", "me"]
)
# A placeholder's word inside an entity ("<PERSON> Jeanne"): "<", "PERSON", ">" for spaCy.
_PLACEHOLDER_WORDS = frozenset(
    [
        "EMAIL",
        "URL",
        "IBAN",
        "CARD",
        "CVV",
        "NIR",
        "ID",
        "PHONE",
        "ORDER",
        "PERSON",
        "ADDRESS",
        "BIRTHDATE",
        "SECRET",
        "IP",
    ]
)
# Carriers, their services and shops CX teams filter on: never names ("livré par Amazon
# Logistics", "DPD Predict", "Colis Privé"), and an entity that opens with one is the brand's
# own name ("Chronopost Shop2Shop"), not a person after it (see `_ner_names`).
_BRANDS = frozenset(
    [
        "colissimo",
        "chronopost",
        "poste",
        "dpd",
        "ups",
        "dhl",
        "gls",
        "fedex",
        "relay",
        "mondial",
        "relais",
        "amazon",
        "cdiscount",
        "fnac",
        "darty",
        "boulanger",
        "leclerc",
        "carrefour",
        "auchan",
        "vinted",
        "leboncoin",
        "paypal",
        "visa",
        "mastercard",
        "apple",
        "samsung",
        "iphone",
        "android",
        "google",
        "facebook",
        "instagram",
        "twitter",
        "whatsapp",
        "sfr",
        "orange",
        "free",
        "bouygues",
        "geodis",
        "tnt",
        "kuehne",
        "nagel",
        "schenker",
        "heppner",
        "dachser",
        "gefco",
        "agediss",
        "ciblex",
        "kiala",
        "pickup",
        "bpost",
        "postnl",
        "paack",
        "colicoli",
        "cubyn",
        "mory",
        "fretlink",
        "privé",
        "predict",
        "logistics",
        "prime",
        "shein",
        "temu",
        "aliexpress",
        "wish",
        "veepee",
        "showroomprivé",
        "zalando",
        "ikea",
        "conforama",
        "castorama",
        "but",
        "lidl",
        "intermarché",
        "sephora",
        "decathlon",
        "deliveroo",
        "uber",
        "eats",
        "redoute",
        "laredoute",
        "rakuten",
        "ebay",
        "backmarket",
        "zara",
        "kiabi",
        "lapeyre",
        "bricodepot",
        "manomano",
    ]
)
# Words that spaCy's small model tags as PER/LOC but are carriers, brands or greetings.
DEFAULT_KEEP = (
    frozenset(
        [
            # Departments and trade words that follow a role ("Responsable Qualité").
            "qualité",
            "clientèle",
            "logistique",
            "rayon",
            "magasin",
            "technique",
            "commercial",
            "marketing",
            "communication",
            "relation",
            "relations",
            "support",
            "boutique",
            "agence",
            "réclamation",
            "réclamations",
            "expédition",
            "expéditions",
            "satisfaction",
            "compte",
            "comptes",
            "achats",
            "caisse",
            "accueil",
            "vente",
            "ventes",
            "après-vente",
            # Review words that open a sentence: spaCy's small model often calls them a PER when
            # the sentence boundary is missed ("… superbe ! Accueil chaleureux", "Cuisine top").
            "cuisine",
            "bonne",
            "bon",
            "sinon",
            "personnel",
            "personnels",
            "salle",
            "facile",
            "nourriture",
            "carte",
            "inutile",
            "juste",
            "hâte",
            "dessert",
            "desserts",
            "salade",
            "plat",
            "plats",
            "adresse",
            "rapide",
            "entrée",
            "entrées",
            "menu",
            "ambiance",
            "cadre",
            "prix",
            "accueillant",
            "serveurs",
            "serveuse",
            "équipe",
            "repas",
            "déco",
            "décoration",
            "terrasse",
            "parking",
            "vin",
            "vins",
            "boissons",
            "portions",
            "portion",
            "tarifs",
            "tarif",
            "excellent",
            "excellente",
            "parfait",
            "parfaite",
            "délicieux",
            "produits",
            "articles",
            "site",
            "appli",
            "application",
            "livreur",
            # Titles: "Monsieur le directeur" is not "Karim le livreur".
            "monsieur",
            "madame",
            "mademoiselle",
            "messieurs",
            "mesdames",
            "dames",  # "Bonjour Messieurs Dames": NER took « Dames » for a name
            "docteur",
            "maître",
            "maitre",
            "merci",
            "bonjour",
            "bonsoir",
            "salut",
            "cordialement",
            "bravo",
            "super",
            "top",
            "nul",
            "sav",
            "service",
            "client",
            "clients",
            # A form's labels: "Nom : Dupont Prénom Jean" had taken « Prénom » as the surname.
            "nom",
            "prénom",
            "prenom",
            "email",
            "e-mail",
            "mail",
            "tél",
            "tel",
            "téléphone",
            "ville",
            "livraison",
            "colis",
            "commande",
            "remboursement",
            "emballage",
            "produit",
            "article",
            "retour",
        ]
    )
    | _BRANDS
)


# Words that follow a cue ("Monsieur le directeur", "la conseillère du SAV") but are no
# names. A short list on purpose: importing spaCy's stop words would import spaCy itself.
_NOT_NAMES = frozenset(
    [
        "le",
        "la",
        "les",
        "l",
        "un",
        "une",
        "des",
        "de",
        "du",
        "d",
        "au",
        "aux",
        "et",
        "ou",
        "où",
        "à",
        "a",
        "en",
        "pour",
        "par",
        "sur",
        "sous",
        "avec",
        "sans",
        "chez",
        "ce",
        "cet",
        "cette",
        "ces",
        "mon",
        "ma",
        "mes",
        "ton",
        "ta",
        "tes",
        "son",
        "sa",
        "ses",
        "notre",
        "nos",
        "votre",
        "vos",
        "leur",
        "leurs",
        "qui",
        "que",
        "quoi",
        "dont",
        "il",
        "elle",
        "ils",
        "elles",
        "on",
        "nous",
        "vous",
        "je",
        "tu",
        "me",
        "te",
        "se",
        "lui",
        "y",
        "ne",
        "pas",
        "plus",
        "très",
        "trop",
        "bien",
        "mal",
        "est",
        "était",
        "sont",
        "a",
        "ai",
        "as",
        "avait",
        "été",
        "être",
        "avoir",
        "fait",
        "dit",
        "m",
        "s",
        "n",
        "c",
        "j",
        "qu",
        # "merci à Tous et à Toutes".
        "tous",
        "toutes",
        "tout",
        "toute",
        "moi",
        "toi",
        "eux",
    ]
)


@dataclass(frozen=True)
class PiiConfig:
    """What to mask. `keep_words` are never masked as names (carriers, brands, greetings);
    `known_names` are the first and last names read in lower case (None: Faker's lists)."""

    names: bool = True
    addresses: bool = True
    phone_region: str = "FR"
    keep_words: frozenset[str] = field(default=DEFAULT_KEEP)
    known_names: NameLists | None = None


def load_ner(name: str = "fr_core_news_sm") -> Any | None:
    """A spaCy pipeline reduced to what NER needs, or None when it cannot load."""
    from nlp.text.spacy_loader import load_pipeline

    try:
        return load_pipeline(
            name, exclude=["parser", "lemmatizer", "attribute_ruler", "morphologizer", "senter"]
        )
    except Exception:  # noqa: BLE001 - names then rely on the cue rules only
        return None


def _compact(s: str) -> str:
    return re.sub(r"[\s./_,;:*|-]", "", s)


def _spelt_digits(token: str) -> str:
    """'06' -> '06', 'zéro' -> '0', 'trente-quatre' -> '34', 'quatre-vingt-dix-huit' -> '98'."""
    if token[0].isdigit():
        return token
    parts = [p for p in re.split(r"[\s-]+", token.lower()) if p != "et"]
    if len(parts) > 1 and parts[0] == "quatre" and parts[1].startswith("vingt"):
        parts = ["octante", *parts[2:]]  # quatre-vingts = 80
    return str(sum(_NUM_VALUES[p] for p in parts))


def _spelt_phone_spans(toks: list[tuple[int, int, str, bool]], cued: bool) -> list[tuple[int, int]]:
    """Spans of the tokens (start, end, digits, is a word) that spell a phone number: 10
    digits from a 0, or 9 from the first token when a phone word comes right before."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(toks):
        first = toks[i][2]
        if first[0] == "0":
            need = 10
        elif i == 0 and cued and toks[0][3] and len(first) == 1:
            need = 9  # "tel six douze trente-quatre …"
        else:
            i += 1
            continue
        digits, j = "", i
        while j < len(toks) and len(digits) < need:
            digits += toks[j][2]
            j += 1
        # "00" opens an international number, not a French one; and at least one word:
        # runs of digits alone are the other rules' business.
        if len(digits) == need and digits[:2] != "00" and any(t[3] for t in toks[i:j]):
            spans.append((toks[i][0], toks[j - 1][1]))
            i = j
        else:
            i += 1
    return spans


def _replace_spans(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    """`text` with each of the sorted, disjoint `spans` replaced: joined once, since cutting
    the text again for each span costs its length times the number of spans."""
    parts: list[str] = []
    pos = 0
    for start, end in spans:
        parts += [text[pos:start], placeholder]
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _doctor_brand(first: str, second: str | None = None) -> bool:
    """ "Dr Martens", "Dr. Oetker", "Dr Pierre Ricaud": a brand after the title."""
    words = f"{first} {second}" if second else first
    return first.lower() in DOCTOR_BRANDS or " ".join(words.lower().split()) in DOCTOR_BRANDS


def _named_brand(words: str) -> bool:
    """A brand spelt as a first and a last name, its first names joined by a hyphen or not
    ("Louis Vuitton", "Jean-Paul Gaultier"); "Louis Martin" is a name."""
    return words.lower().replace("-", " ") in NAMED_BRANDS


def _doctor_brand_span(text: str, start: int, end: int) -> bool:
    """An entity that is a brand spelt with "Dr": "Dr Martens" in it, or "Martens" after it."""
    title = _DOCTOR_START.match(text, start, end)
    if title:
        start = title.end()
    elif not _DOCTOR.search(text, max(0, start - 12), start):
        return False
    return start < end and _doctor_brand(text[start:end])


def _me_inside_sentence(m: re.Match[str]) -> bool:
    """ "Me" before a capitalised word is the lawyer's title ("j'ai écrit à Me Kowalczyk")
    inside a sentence, where the pronoun is capitalised only in a text that capitalises every
    word ("il Me Faut Un Colis": the next word is too); opening a sentence, when a verb of
    which the name is the subject follows ("Me Kowalczyk a répondu"; "Me Faire rembourser",
    "Me Voilà enfin" are the pronoun)."""
    text, start = m.string, m.start()
    before = text[max(0, start - 3) : start].rstrip(" \t")
    if not before or before[-1] in '.!?…\n\r"«“(':
        return _SUBJECT_NEXT.match(text, m.end()) is not None
    if _PRONOUN_BEFORE.search(text, max(0, start - 8), start):
        return False  # "ça Me Plait", "je Me Suis": a subject and its verb
    after = _NEXT_WORD.match(text, m.end())
    return after is None or not after.group(0)[-1].isupper()


_NEXT_WORD = re.compile(r"[ \t]+\w")
_PRONOUN_BEFORE = re.compile(
    r"(?i)(?:\b(?:je|tu|il|elle|on|ils|elles|nous|vous|ça|ca|cela|qui|ne)|\b[jn]['’])[ \t]*$"
)
# What opens a predicate after its subject: "a répondu", "m'a écrit", "n'a pas", "nous a".
_SUBJECT_NEXT = re.compile(
    r"[ \t]*,?[ \t]+(?:(?:a|avait|est|était|ne|nous|vous|lui|qui)\b|(?:n|m|l|s)['’]\w)"
)


def _postcode_town_lower(m: re.Match[str]) -> str:
    text, start = m.string, m.start()
    if m.group(1).lower() in _NOT_NAMES or m.group(1).lower() in DEFAULT_KEEP:
        return m.group(0)  # "75011 pour", "75011 livraison"
    cued = _TOWN_CUE.search(text, max(0, start - 30), start) is not None
    alone = _LINE_START.search(text, max(0, start - 30), start) and _LINE_END.match(text, m.end())
    return "<ADDRESS>" if cued or alone else m.group(0)


def _in_spans(pos: int, spans: list[tuple[int, int]], starts: list[int]) -> bool:
    """`pos` lies in one of the sorted, disjoint `spans` (`starts`: their starts)."""
    k = bisect.bisect_right(starts, pos) - 1
    return k >= 0 and pos < spans[k][1]


def _place_before(text: str, pos: int) -> bool:
    """A preposition of place right before `pos` ("à Paris le livreur"). The search starts at
    the word before the blanks: searched from 0, each name read the whole text before it."""
    blank = pos
    while blank and text[blank - 1].isspace():
        blank -= 1
    return _PLACE_BEFORE.search(text, max(0, blank - 8), pos) is not None


def _rib_key_ok(bank: str, branch: str, account: str, key: str) -> bool:
    # The RIB key: 97 - (89*bank + 15*branch + 3*account) mod 97, letters mapped to digits.
    letters = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "12345678912345678923456789")
    acc = int(account.upper().translate(letters))
    return 97 - (89 * int(bank) + 15 * int(branch) + 3 * acc) % 97 == int(key)


class PiiMasker:
    """Callable text -> masked text. Build once (with an optional spaCy NER pipeline) and reuse.

    Masking is idempotent: placeholders contain no digits, letters-only cues never re-match them.
    """

    def __init__(self, config: PiiConfig | None = None, nlp: Any | None = None) -> None:
        self.config = config or PiiConfig()
        self.nlp = nlp if nlp is not None and "ner" in getattr(nlp, "pipe_names", ()) else None
        self._stop = _NOT_NAMES
        self.known_names = self.config.known_names or faker_names()

    def __call__(self, text: str) -> str:
        return self.mask(text)

    # -- rules ----------------------------------------------------------------------------
    @staticmethod
    def _iban(text: str) -> str:
        out: list[str] = []
        pos = 0
        for m in _IBAN_START.finditer(text):
            if m.start() < pos:
                continue
            raw = m.group(0)
            # The candidate may run into the next words: keep the longest prefix that is valid.
            best = 0
            chars = 0
            for i, ch in enumerate(raw):
                if ch.isalnum():
                    chars += 1
                    if 15 <= chars <= 34 and _stdnum_iban.is_valid(_compact(raw[: i + 1])):
                        best = i + 1
            if not best and _IBAN_CUE.search(text, max(0, m.start() - 24), m.start()):
                # Right after "IBAN": a mistyped or cut number is still someone's account.
                digits = _IBAN_DIGITS.match(raw)
                if digits and sum(ch.isdigit() for ch in digits.group(0)) >= 12:
                    best = digits.end()
            if best:
                out.append(text[pos : m.start()])
                out.append("<IBAN>")
                pos = m.start() + best
        out.append(text[pos:])
        return "".join(out)

    @staticmethod
    def _rib(m: re.Match[str]) -> str:
        try:
            ok = _rib_key_ok(*m.groups())
        except ValueError:
            ok = False
        return "<IBAN>" if ok else m.group(0)

    @staticmethod
    def _card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if (
            len(digits) in (13, 14)
            and _EAN_CUE.search(m.string, max(0, m.start() - 24), m.start())
            and _stdnum_ean.is_valid(digits)
        ):
            return m.group(0)  # "EAN 3841079958710": a barcode whose digits pass Luhn too
        if 13 <= len(digits) <= 19 and _stdnum_luhn.is_valid(digits):
            return "<CARD>"
        # Right after "carte" / "CB": a mistyped 16-digit number is still someone's card.
        cued = _CARD_CUE.search(m.string, max(0, m.start() - 24), m.start())
        return "<CARD>" if cued and len(digits) == 16 else m.group(0)

    @staticmethod
    def _nir(m: re.Match[str]) -> str:
        # The shape (sex, year, month, department, commune, order) is already specific; a wrong
        # key is a typo, not a reason to leave a social-security number in clear.
        raw = m.group(0)
        compact = _compact(raw).upper()
        if len(compact) not in (13, 15):
            return raw
        if len(compact) == 13 and _EAN_PRINTED.fullmatch(raw):
            if _PRODUCT_CUE.search(m.string, max(0, m.start() - 24), m.start()):
                return raw  # "EAN …", "réf …": kept or an <ORDER>, as other long numbers
            before = m.string[max(0, m.start() - 40) : m.start()]
            if _stdnum_ean.is_valid(compact) and not _NIR_CUE.search(before):
                return raw
        return "<NIR>"

    @staticmethod
    def _id_doc(m: re.Match[str]) -> str:
        number = m.group(1)
        alnum = sum(ch.isalnum() for ch in number)
        if not 6 <= alnum <= 18:
            return m.group(0)
        return m.string[m.start() : m.start(1)] + "<ID>"

    @staticmethod
    def _secret(m: re.Match[str]) -> str:
        value = m.group("quoted") or m.group("bare")
        if m.group("bare") is not None and (
            sum(ch.isalnum() for ch in value) < 4
            or not (_SECRET_SHAPE.search(value.rstrip("!?")) or PiiMasker._said_secret(m, value))
        ):
            return m.group(0)  # "mot de passe oublié !", "code d'accès pénible", "mdp 2 fois"
        start = m.start("quoted") if m.group("quoted") is not None else m.start("bare")
        end = m.end("quoted") if m.group("quoted") is not None else m.end("bare")
        placeholder = "<ID>" if m.group("login") else "<SECRET>"
        return m.string[m.start() : start] + placeholder + m.string[end : m.end()]

    @staticmethod
    def _said_secret(m: re.Match[str], value: str) -> bool:
        """A letters-only password or login given as the value: "mdp : azerty", "mon mot de
        passe est soleilbleu". Not a pseudo (public: "pseudo : Vapcool"), nor a code (digits:
        "code d'accès : porte")."""
        cue = m.group(0)[: m.start("said") - m.start()].lower()
        return (
            m.group("said").strip() != ""
            and value.isalpha()
            and (m.group("login") is not None or _PASSWORD_CUE.search(cue) is not None)
            and "pseudo" not in cue
            and value.lower() not in _NOT_NAMES
            and value.lower() not in DEFAULT_KEEP
            and not _SECRET_STATE.match(value)
            and not _SAID_PROSE.match(value)
            and _SAID_END.match(m.string, m.end("bare")) is not None
        )

    @staticmethod
    def _plate(m: re.Match[str]) -> str:
        before = max(0, m.start() - 40)
        if _PLATE_PRODUCT_CUE.search(m.string, before, m.start()):
            return m.group(0)  # "modèle AB-123-CD": a product's code
        if not m.group("cued"):
            return "<ID>"
        cue = _PLATE_CUE.search(m.string, before, m.start())
        if not cue:
            return m.group(0)
        if m.group(0)[0].isdigit():  # the FNI shape, "1234 AB 75"
            if _PLATE_COUNT_AFTER.match(m.string, m.end()):
                return m.group(0)  # "voiture 206 CC 75 000 km"
            if _CAR_MODEL.match(m.group(0)) and not _PLATE_STRONG_CUE.match(cue.group(0)):
                return m.group(0)  # "ma voiture 206 CC 90"
        return "<ID>"

    @staticmethod
    def _long_digits(m: re.Match[str]) -> str:
        """A long number is a reference (<ORDER>), except a barcode said to be one: "EAN
        3017620422003", "code-barre : 12345670" (GS1 check digit valid)."""
        raw = m.group(0)
        if (
            len(raw) in (8, 12, 13, 14)
            and _EAN_CUE.search(m.string, max(0, m.start() - 24), m.start())
            and _stdnum_ean.is_valid(raw)
        ):
            return raw
        return "<ORDER>"

    def _phones(self, text: str) -> str:
        if not _PHONE_SHAPED.search(text):
            return text
        spans: list[tuple[int, int]] = []
        for match in phonenumbers.PhoneNumberMatcher(
            text, self.config.phone_region, leniency=phonenumbers.Leniency.POSSIBLE
        ):
            number = match.number
            national = str(number.national_number)
            raw = match.raw_string
            # POSSIBLE also finds national numbers without their 0 ("6 12 34 56 78"); dates and
            # prices are shorter than a full national number, so require one. Other countries'
            # numbers given with their code may be shorter ("+32 2 512 34 56", 8 digits): a
            # valid number in its own plan then.
            if len(national) < 9 or not phonenumbers.is_possible_number(number):
                if not (raw[0] == "+" or raw.startswith("00")):
                    continue
                if len(national) < 8 or not phonenumbers.is_valid_number(number):
                    continue
            if _DATE_LIKE.match(raw):
                continue  # "le 01.02.2024 10 h": a date and an hour
            if raw[0] not in "+0(" and not _GROUPED_NO_ZERO.fullmatch(raw):
                continue  # a bare 9-digit run is an id, not "6 12 34 56 78"
            spans.append((match.start, match.end))
        return _replace_spans(text, spans, "<PHONE>")

    @staticmethod
    def _fr_grouped(m: re.Match[str]) -> str:
        raw = m.group(0)
        digits = re.sub(r"\D", "", raw)
        if len(digits) != 10 or raw.count("\n") > 1 or _DATE_LIKE.match(raw.replace("\n", " ")):
            return raw  # more than one line break: numbers listed one per line
        if _SIZE_CUE.search(m.string, max(0, m.start() - 30), m.start()):
            return raw  # "tailles 02 - 04 - 06 - 08 - 10": a size run, not a number
        ok = phonenumbers.is_possible_number(phonenumbers.parse(digits, "FR"))
        return "<PHONE>" if ok else raw

    @staticmethod
    def _fr_odd(m: re.Match[str]) -> str:
        """`_FR_PHONE_ODD`: as `_fr_grouped`, but groups in even steps ("tomes 01,02,03,04,05",
        "épisodes 06,07,08,09,10") are a list, which a comma separates far more often than a
        phone's groups; after a phone word ("tel 01,02,03,04,05") it is the number."""
        groups = [int(g) for g in re.findall(r"\d{2}", m.group(0))]
        steps = {b - a for a, b in zip(groups, groups[1:], strict=False)}
        cued = _PHONE_CUE.search(m.string, max(0, m.start() - 40), m.start())
        if len(steps) == 1 and min(steps) > 0 and not cued:
            return m.group(0)
        return PiiMasker._fr_grouped(m)

    @staticmethod
    def _be_phone(m: re.Match[str]) -> str:
        """Nine digits in a Belgian grouping. After a phone word ("tel", "appelez le", "au") a
        possible Belgian number is a phone; after an order word ("commande 02 512 34 56") it is
        read as the reference it is said to be (masked either way); without a cue, only a
        number valid in the Belgian plan is taken (an order or a count rarely has this shape,
        but a cue is what tells)."""
        raw = m.group(0)
        number = phonenumbers.parse(re.sub(r"\D", "", raw), "BE")
        before = max(0, m.start() - 40)
        if _ORDER_CUE.search(m.string, before, m.start()):
            return "<ORDER>" if phonenumbers.is_possible_number(number) else raw
        if _BE_PHONE_CUE.search(m.string, before, m.start()):
            return "<PHONE>" if phonenumbers.is_possible_number(number) else raw
        return "<PHONE>" if phonenumbers.is_valid_number(number) else raw

    def _email_head(self, m: re.Match[str]) -> str:
        """The words of a spaced local part before `<EMAIL>`, when they are names."""
        first, last = m.group(1), m.group(2)
        if not self._known_name(last):
            return m.group(0)
        if first is not None and self._known_name(first):
            return "<EMAIL>"
        return m.string[m.start() : m.start(2)] + "<EMAIL>"

    def _email_surname_first(self, text: str) -> str:
        """ "kowalczyk marie arobase gmail point com" -> "<EMAIL>": the word before a known
        first name that opens an address goes with it (see `_EMAIL_SURNAME_FIRST`)."""
        spans: list[tuple[int, int]] = []
        for m in _EMAIL_SURNAME_FIRST.finditer(text):
            word = m.group(1)
            if (spans and m.start() < spans[-1][1]) or not self._known_first(m.group(2)):
                continue
            if self._common(word) or word.lower() in _MAIL_INTRO:
                continue
            for rule in (_EMAIL_OBFUSCATED, _EMAIL, _EMAIL_LOOSE):
                address = rule.match(text, m.end())
                if address:
                    spans.append((m.start(), address.end()))
                    break
        return _replace_spans(text, spans, "<EMAIL>") if spans else text

    def _known_name(self, word: str) -> bool:
        return self._known_first(word) or self._known_last(word)

    def _common(self, word: str) -> bool:
        """A stop word or a word that is never a name (carriers, trade words, titles)."""
        low = word.lower()
        return low in self._stop or low in self.config.keep_words

    def _honorific(self, m: re.Match[str]) -> str:
        first, second = m.group(1), m.group(2)
        title = m.string[m.start() : m.start(1)].rstrip()
        if title == "Me" and not (
            self._known_last(first)
            or (self._known_first(first) and second is not None)
            or _me_inside_sentence(m)
        ):
            return m.group(0)  # "Me voilà", "Me Faire rembourser": the pronoun
        if title.lower().rstrip(".") in ("dr", "docteur") and _doctor_brand(first, second):
            return m.group(0)  # "Dr Martens", "Dr. Oetker"
        # Surnames that open with a particle, "Mme Le Gall", "M. de Villiers": not before a
        # title ("Monsieur Le Directeur", "Madame La Maire").
        if (first in _SURNAME_PARTICLES or first in _LOWER_PARTICLES) and second is not None:
            last = second.split()[-1]
            if self._common(last) or _TITLES.fullmatch(last):
                return m.group(0)
            if first in _LOWER_PARTICLES and (
                last.isupper() or _ARTICLE_BEFORE.search(m.string, max(0, m.start() - 8), m.start())
            ):
                return m.group(0)  # "le monsieur de SOS Phone": a man, and the shop he is from
            return m.string[m.start() : m.start(1)] + "<PERSON>" + m.string[m.end(2) : m.end()]
        if self._common(first):
            return m.group(0)
        if not first[0].isupper() and second:
            second = None  # "madame dupont Colis" : only the word right after the cue
        if second and second.split()[0] in _LOWER_PARTICLES:
            second = None  # "Mme Dupont de Lyon": the town she is from
        end = m.end(2) if second else m.end(1)
        return m.string[m.start() : m.start(1)] + "<PERSON>" + m.string[end : m.end()]

    def _honorific_m(self, m: re.Match[str]) -> str:
        """ "M" without its dot after a greeting: a capitalised word or a known name in lower
        case ("bonjour m. dupont"); "Merci M pour…" stays."""
        first = m.group(1)
        if first[0].islower() and not self._known_name(first):
            return m.group(0)
        return self._honorific(m)

    def _name_cue(self, m: re.Match[str]) -> str:
        k = 1 if m.group(1) is not None else 3  # which alternative matched
        first, second = m.group(k), m.group(k + 1)
        if self._common(first):
            return m.group(0)
        cue = m.string[m.start() : m.start(k)].lower()
        if "nom" in cue and first.islower() and not self._known_first(first):
            return m.group(0)  # "mon nom est mal orthographié"; "mon nom est jean martin"
        both = (
            second is not None
            and not self._common(second)
            and second not in _SURNAME_PARTICLES  # "Mohamed Ben Ali": `_PERSON_PARTICLE`'s
            and second[0].isupper() == first[0].isupper()  # "jean dupont", "Jean Dupont"
        )
        end = m.end(k + 1) if both else m.end(k)
        return m.string[m.start() : m.start(k)] + "<PERSON>" + m.string[end : m.end()]

    def _name_field(self, m: re.Match[str]) -> str:
        first, second = m.group(1), m.group(2)
        if self._common(first):
            return m.group(0)
        both = (
            second is not None
            and second not in _SURNAME_PARTICLES  # "Nom : Mohamed Ben Ali", taken whole after
            and (
                (first[0].isupper() and second[0].isupper() and not self._common(second))
                or self._known_name(second)
            )
        )
        end = m.end(2) if both else m.end(1)
        return m.string[m.start() : m.start(1)] + "<PERSON>" + m.string[end : m.end()]

    def _role(self, m: re.Match[str]) -> str:
        if self._common(m.group(1)):
            return m.group(0)
        # "la conseillère Ana Dos Santos": the particle opens the surname, taken whole after.
        second = m.group(2)
        end = m.end(2) if second and second.strip() not in _SURNAME_PARTICLES else m.end(1)
        return m.string[m.start() : m.start(1)] + "<PERSON>" + m.string[end : m.end()]

    def _known_first(self, word: str) -> bool:
        return not self._common(word) and self.known_names.is_first(word)

    def _known_last(self, word: str | None) -> bool:
        return word is not None and not self._common(word) and self.known_names.is_last(word)

    def _lower_name(self, m: re.Match[str], k: int = 1) -> str:
        """A known first name (group `k`) in a name's place, and a known last name right after
        it (group `k + 1`); a brand spelt with a name ("yves rocher") stays."""
        first, last = m.group(k), m.group(k + 1)
        if not self._known_first(first):
            return m.group(0)
        if last is not None and f"{first} {last}".lower() in NAMED_BRANDS:
            return m.group(0)
        end = m.end(k + 1) if self._known_last(last) or self._surname(m, k) else m.end(k)
        return m.string[m.start() : m.start(k)] + "<PERSON>" + m.string[end : m.end()]

    def _greeting_name(self, m: re.Match[str]) -> str:
        """`_lower_name` after a greeting, where a surname in no list is taken too when both
        are typed in lower case and the pair ends where a name does ("bonjour jean kowalczyk,",
        "bonjour jean kowalczyk je vous écris"): "bonjour jean comment allez-vous" stays."""
        first, last = m.group(1), m.group(2)
        if (
            last is not None
            and first.islower()
            and last.islower()
            and len(last) >= 3
            and self._known_first(first)
            and not self._known_last(last)
            and not self._common(last)
            and f"{first} {last}" not in NAMED_BRANDS
            and _NAME_ENDS.match(m.string, m.end())
        ):
            return m.string[m.start() : m.start(1)] + "<PERSON>"
        return self._lower_name(m)

    def _surname(self, m: re.Match[str], k: int) -> bool:
        """Group `k + 1` is the surname of the capitalised known first name in group `k`
        ("Cordialement, Sophie Kowalczyk"): capitalised too, on the same line, no common
        word. Only known last names were taken, and NER never saw the pair again once the
        first name was masked, so most surnames of a signature were stored."""
        first, last = m.group(k), m.group(k + 1)
        return (
            last is not None
            and first[0].isupper()
            and not first.isupper()  # "MERCI KARIM POUR TOUT": shouted, any word follows
            and last[0].isupper()
            and "\n" not in m.string[m.end(k) : m.start(k + 1)]
            and not self._common(last)
            # "Mohamed Ben Ali": the particle opens the surname (`_PERSON_PARTICLE` takes it
            # whole); "Jean-Marc Joyeuses Pâques" signs off with a greeting.
            and last not in _SURNAME_PARTICLES
            and not _HOLIDAY.match(m.string, m.start(k + 1))
        )

    def _particle_surnames(self, text: str) -> str:
        """ "<PERSON> Le Bris" -> "<PERSON>": the particle and surname after a masked name, not
        a trade word nor a title ("<PERSON> La Poste", "<PERSON> Le Directeur")."""
        if "<PERSON>" not in text:
            return text

        def one(m: re.Match[str]) -> str:
            last = m.group(2)
            if self._common(last) or _TITLES.fullmatch(last) or last.lower() in _PARTICLE_TOWNS:
                return m.group(0)
            return "<PERSON>"

        return _PERSON_PARTICLE.sub(one, text)

    def _initial_sign_off(self, m: re.Match[str]) -> str:
        if self._common(m.group(2)):
            return m.group(0)  # "Cordialement, L. Service client"
        end = m.end(2) if m.group(3) is None or self._common(m.group(3)) else m.end(3)
        return m.string[m.start() : m.start(1)] + "<PERSON>" + m.string[end : m.end()]

    def _lower_cue(self, m: re.Match[str]) -> str:
        """`_lower_name` for whichever alternative of `_LOWER_CUE` matched."""
        return self._lower_name(m, 1 if m.group(1) is not None else 3)

    def _lower_before_role(self, m: re.Match[str]) -> str:
        if not self._known_first(m.group(1)):
            return m.group(0)
        return "<PERSON>" + m.string[m.end(1) : m.end()]

    def _compound_first(self, m: re.Match[str]) -> str:
        """ "jean-pierre", "marie-rose": both halves first names, one of them not a word."""
        names = self.known_names
        halves = (m.group(1), m.group(2))
        if not all(names.is_first(h) or h in WORD_NAMES for h in halves):
            return m.group(0)
        if not any(names.is_first(h) for h in halves) or any(self._common(h) for h in halves):
            return m.group(0)
        last = m.group(3)
        if last is not None and _named_brand(f"{halves[0]} {halves[1]} {last}"):
            return m.group(0)  # "parfum Jean-Paul Gaultier"
        # Capitalised, the word after a capitalised compound is its surname, in a list or not
        # ("Jean-Pierre Kowalczyk du SAV": NER left it once the first name was masked).
        surname = (
            last is not None
            and m.group(1)[0].isupper()
            and last[0].isupper()
            and not last.isupper()
            and "\n" not in m.string[m.end(2) : m.start(3)]
            and not self._common(last)
            and last not in _SURNAME_PARTICLES  # "Jean-Yves Le Bris": `_PERSON_PARTICLE`'s
            and not _HOLIDAY.match(m.string, m.start(3))  # "Jean-Marc Joyeuses Pâques"
        )
        end = m.end(3) if self._known_last(last) or surname else m.end(2)
        return "<PERSON>" + m.string[end : m.end()]

    def _initials_pair(self, m: re.Match[str]) -> str:
        pair = m.group(1) + (m.group(2) or m.group(3))
        surname = m.group(4)
        if pair in _NOT_INITIALS or self._common(surname) or surname.lower() == "morgan":
            return m.group(0)
        if m.group(3) is not None and not (
            self._known_last(surname) or (pair in _FIRST_NAME_INITIALS and len(surname) >= 3)
        ):
            return m.group(0)  # "JP" without dots: a known last name, or a compound's initials
        return "<PERSON>"

    def _initials_name(self, m: re.Match[str]) -> str:
        if self._common(m.group(1)):
            return m.group(0)
        return "<PERSON>" + m.string[m.end(1) : m.end()]

    def _thanks_name(self, m: re.Match[str]) -> str:
        first, second, more = m.group(1), m.group(2), m.group(3)
        if not self._known_first(first):
            return m.group(0)
        if second is not None and f"{first} {second}".lower() in NAMED_BRANDS:
            return m.group(0)  # "Merci Yves Rocher"
        out = [m.string[m.start() : m.start(1)], "<PERSON>"]
        if second is not None and not (self._known_last(second) or self._surname(m, 1)):
            if not self._known_first(second):
                return "".join(out) + m.string[m.end(1) : m.end()]
            out += [m.string[m.end(1) : m.start(2)], "<PERSON>"]  # "Myriam Kevin et Stella"
        # The others joined to it, while they are known first names.
        for part in _THANKS_MORE.finditer(more):
            if not self._known_first(part.group(2)):
                out.append(more[part.start() :])
                break
            out += [part.group(1), "<PERSON>"]
        return "".join(out)

    def _thanks(self, m: re.Match[str]) -> str:
        names = _THANKS_SPLIT.split(m.group(1))
        if any(self._common(n) for n in names):
            return m.group(0)
        if len(names) == 1 and not _THANKS_PERSON.match(m.string, m.end()):
            return m.group(0)
        masked = re.sub(_TITLE_WORD, "<PERSON>", m.group(1))
        return m.string[m.start() : m.start(1)] + masked

    @staticmethod
    def _spelt_phones(text: str) -> str:
        """Phone numbers spelt in words, whole or in part: "zéro six douze trente-quatre …",
        "06 douze 34 56 78"; without their 0 only right after a phone word."""
        spans: list[tuple[int, int]] = []
        for run in _NUM_RUN.finditer(text):
            cued = _PHONE_CUE.search(text, max(0, run.start() - 40), run.start()) is not None
            for token in _NUM_TOKENS:
                found = _spelt_phone_spans(
                    [
                        (t.start(), t.end(), _spelt_digits(t.group(0)), t.group(0)[0].isalpha())
                        for t in token.finditer(text, run.start(), run.end())
                    ],
                    cued,
                )
                if found:
                    spans += found
                    break
        return _replace_spans(text, spans, "<PHONE>")

    def _ner_names(self, text: str) -> str:
        if self.nlp is None:
            return text
        # NER costs ~100x the rules: only run it when a capitalised word inside a sentence is
        # neither a stop word nor a known trade word ("Colissimo", "La Poste", "Produit").
        before_role = [
            m.span(1)
            for m in _NAME_BEFORE_ROLE.finditer(text)
            if not self._common(m.group(1))  # "Monsieur le directeur", "Enfin le livreur"…
            and not _place_before(text, m.start(1))  # "à Paris le livreur…"
        ]
        if not before_role and not any(not self._common(w) for w in _MID_CAPITAL.findall(text)):
            return text
        spans: list[tuple[int, int]] = []
        doc = self.nlp(text)
        # doc.ents is rebuilt on each access; sorted and disjoint, an entity holding a span is
        # the last one starting before it (a scan of all of them per name was quadratic).
        ents = doc.ents
        ent_starts = [ent.start_char for ent in ents]
        for start, end in before_role:
            # Any entity label: the small model calls "Karim" a LOC as often as a PER.
            k = bisect.bisect_right(ent_starts, start) - 1
            if k >= 0 and end <= ents[k].end_char:
                spans.append((start, end))
        # Entities are disjoint: a PER span can only overlap a name taken before its role.
        taken_starts = [a for a, _ in spans]
        taken = list(spans)
        # Greetings the model calls persons ("Joyeuses Pâques", "Bonne Année"): never names.
        holidays = [m.span() for m in _HOLIDAY.finditer(text)]
        holiday_starts = [a for a, _ in holidays]
        for ent in ents:
            if ent.label_ != "PER":
                continue
            # Keep the leading run of capitalised, non-common words ("Jean Martin du SAV").
            run: list[Any] = []
            brand = False  # "Amazon Logistics", "DPD Predict": a brand's service, no person
            for tok in ent:
                if (
                    not tok.text[:1].isupper()
                    or self._common(tok.text)
                    or tok.text.lower() in _NER_TITLES
                    or tok.text in _PLACEHOLDER_WORDS
                    or _in_spans(tok.idx, holidays, holiday_starts)
                ):
                    if run:
                        break
                    brand = brand or tok.text.lower() in _BRANDS
                    continue
                run.append(tok)
            if not run or brand:
                continue
            if _named_brand(" ".join(tok.text for tok in run)):
                continue  # "livré par Leroy Merlin", "parfum Jean-Paul Gaultier"
            if len(run) == 1 and run[0].is_sent_start:
                continue  # a lone capitalised word opening a sentence is too ambiguous
            span = (run[0].idx, run[-1].idx + len(run[-1].text))
            if _doctor_brand_span(text, *span):
                continue  # "mes Dr Martens"
            k = bisect.bisect_left(taken_starts, span[1]) - 1
            if k < 0 or taken[k][1] <= span[0]:
                spans.append(span)
        spans.sort()
        return _replace_spans(text, spans, "<PERSON>")

    # -- entry points ---------------------------------------------------------------------
    def mask(self, text: str) -> str:
        if not text:
            return text
        if _FULL_WIDTH_FOUND.search(text):
            text = text.translate(_FULL_WIDTH)
        text = _URL.sub("<URL>", text)
        if _AT_FOUND.search(text):
            text = self._email_surname_first(text)
        text = _EMAIL_OBFUSCATED.sub("<EMAIL>", text)
        text = _EMAIL.sub("<EMAIL>", text)
        if "chez" in text.lower():
            text = _EMAIL_CHEZ.sub(_email_chez, text)
        if "@" in text or "\uff20" in text or "%40" in text:
            text = _EMAIL_LOOSE.sub("<EMAIL>", text)
        if "<EMAIL>" in text:
            text = _EMAIL_TAIL.sub("<EMAIL>", text)
            text = _EMAIL_HEAD.sub(self._email_head, text)
        text = _BARE_URL.sub("<URL>", text)
        text = _QUERY.sub("<URL>", text)
        if any(ch.isdigit() for ch in text):
            text = _IPV4.sub(_ip, text)
            if "::" in text or text.count(":") >= 7:
                text = _IPV6.sub(_ip, text)
            text = _BIRTH_DATE.sub(lambda m: m.group(1) + "<BIRTHDATE>", text)
            text = _BIRTH_YEAR.sub(lambda m: m.group(1) + "<BIRTHDATE>", text)
            text = self._iban(text)
            text = _RIB.sub(self._rib, text)
            text = _ID_DOC.sub(self._id_doc, text)
            text = _CARD_GROUPED.sub(self._card, text)
            text = _CARD.sub(self._card, text)
            text = _CARD_ODD.sub(self._card, text)
            text = _CVV.sub(lambda m: m.group(1) + "<CVV>", text)
            text = _NIR.sub(self._nir, text)
            text = _FR_PHONE.sub("<PHONE>", text)
            text = _FR_PHONE_GROUPED.sub(self._fr_grouped, text)
            text = _FR_PHONE_ODD.sub(self._fr_odd, text)
            text = self._phones(text)
            text = _INTL_PHONE.sub("<PHONE>", text)
            text = _BE_PHONE.sub(self._be_phone, text)
            if self.config.addresses:
                text = _ADDRESS_NAMED.sub("<ADDRESS>", text)
                text = _NAMED_PLACE.sub("<ADDRESS>", text)
                text = _ADDRESS.sub("<ADDRESS>", text)
                text = _POSTCODE_TOWN.sub("<ADDRESS>", text)
                text = _POSTCODE_TOWN_LOWER.sub(_postcode_town_lower, text)
            text = _HASH_ID.sub("<ORDER>", text)
            text = _ORDER_KEYWORD.sub(lambda m: m.group(1) + "<ORDER>", text)
            text = _PLATE.sub(self._plate, text)
            text = _LONG_DIGITS.sub(self._long_digits, text)
        elif self.config.addresses:
            text = _NAMED_PLACE.sub("<ADDRESS>", text)  # "lieu-dit La Croix", no number
        text = _SECRET.sub(self._secret, text)
        text = self._spelt_phones(text)
        if self.config.names:
            text = _HONORIFIC.sub(self._honorific, text)
            text = _HONORIFIC_M.sub(self._honorific_m, text)
            text = _ROLE.sub(self._role, text)
            text = _ROLE_OF.sub(self._role, text)
            text = _ROLE_OPENING.sub(self._role, text)
            text = _ROLE_LOWER.sub(self._lower_name, text)
            low = text.lower()
            if "j'" in low or "j’" in low or "je suis" in low:
                text = _SPOKE_TO.sub(self._lower_name, text)
            text = _NAME_PLACE.sub(self._lower_name, text)
            if "-" in text:
                text = _COMPOUND_FIRST.sub(self._compound_first, text)
            text = _LOWER_CUE.sub(self._lower_cue, text)
            text = _GREETING.sub(self._greeting_name, text)
            text = _SIGN_OFF.sub(self._lower_name, text)
            text = _SIGN_OFF_INITIAL.sub(self._initial_sign_off, text)
            text = _LOWER_BEFORE_ROLE.sub(self._lower_before_role, text)
            if "merci" in low:
                text = _THANKS.sub(self._thanks, text)
                text = _THANKS_NAME.sub(self._thanks_name, text)
            if "-" in text:
                text = _INITIALS_NAME.sub(self._initials_name, text)
            text = _INITIALS_PAIR.sub(self._initials_pair, text)
            if "nom" in low:
                text = _NAME_FIELD.sub(self._name_field, text)
            if "appel" in low:
                text = _CALLED.sub(self._lower_name, text)
            if "appel" in low or "certain" in low or "nom" in low:
                text = _NAME_CUE.sub(self._name_cue, text)
            text = self._particle_surnames(text)
            text = self._ner_names(text)
            text = self._particle_surnames(text)  # "Marie Le Pen": NER stops at "Le"
        return text

    def mask_many(self, texts: Iterable[str]) -> list[str]:
        return [self.mask(t) for t in texts]


# Full-width forms ("０６ １２ ３４ ５６ ７８", "ｊｅａｎ＠…") are read as the ASCII they stand
# for: phonenumbers, python-stdnum and the e-mail rules only know ASCII, and the full-width
# spelling is a known way round filters. One character for one. So are the no-break, narrow
# no-break (French digit grouping: "FR76\u202f3000…") and other Unicode spaces: extra fields,
# quarantined rows and notes are masked without `normalize_text`, and only the phone rules
# read them (an IBAN, card or NIR grouped by them was stored whole).
_UNICODE_SPACES = [0x00A0, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]
# The small at sign "\ufe6b" passes for one as well as the full-width "\uff20".
_FULL_WIDTH = (
    {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
    | dict.fromkeys(_UNICODE_SPACES, 0x20)
    | {0xFE6B: 0x40}
)
_FULL_WIDTH_FOUND = re.compile("[\uff01-\uff5e\u00a0\u2000-\u200a\u202f\u205f\u3000\ufe6b]")

_RULES_ONLY: dict[str, PiiMasker] = {}


def free_key(out: dict[Any, Any], key: Any) -> Any:
    """`key`, or `key#2`, `key#3`… when `out` already holds it (two keys masked alike)."""
    if key not in out or not isinstance(key, str):
        return key
    n = 2
    while f"{key}#{n}" in out:
        n += 1
    return f"{key}#{n}"


def mask_nested(
    value: Any, mask: Callable[[str], str], mask_key: Callable[[str], str] | None = None
) -> Any:
    """`value` with every string in it masked, at any depth of dicts and lists (extra fields
    such as {"client": {"tel": "06 12 34 56 78"}}); other values as they are.

    Dict keys are masked too (with `mask_key`, else `mask`): {"jean@x.fr": "ok"} would keep
    the address otherwise. Two keys that mask to the same string both keep their value: the
    second becomes "<EMAIL>#2", the third "<EMAIL>#3" (first come, first named).

    Iterative, so any depth costs memory, never Python's recursion limit; callers that
    serialise the result bound the depth first (`core.store.MAX_NESTING`)."""
    if isinstance(value, str):
        return mask(value)
    if not isinstance(value, dict | list):
        return value
    key_mask = mask_key or mask
    root: dict[Any, Any] | list[Any] = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]

    def copy(item: Any) -> Any:
        if isinstance(item, str):
            return mask(item)
        if isinstance(item, dict | list):
            target: dict[Any, Any] | list[Any] = {} if isinstance(item, dict) else []
            stack.append((item, target))
            return target
        return item

    while stack:
        source, target = stack.pop()
        if isinstance(source, dict):
            for key, item in source.items():
                name = key_mask(key) if isinstance(key, str) else key
                target[free_key(target, name)] = copy(item)
        else:
            target.extend(copy(item) for item in source)
    return root


def mask_pii(text: str, masker: Callable[[str], str] | None = None) -> str:
    """Mask with `masker`, else with the rules (no NER). Kept for callers without a masker."""
    if masker is not None:
        return masker(text)
    # A rules-only masker holds no model: caching it is a compiled-regex cache, not state.
    rules = _RULES_ONLY.get("default")
    if rules is None:
        rules = _RULES_ONLY["default"] = PiiMasker()
    return rules.mask(text)
