"""PII audit: 475 spellings of French personal data (and text that must stay), masked the
way ingest masks them. Prints, per kind, how many leaked and how many lost words they should
have kept, then every leak and over-mask. Synthetic texts only (no research data).

Run:  python benchmarks/pii_audit.py [--out results.jsonl]
Config tested = ingest's: PiiMasker(nlp=load_ner()) (settings.pii_ner defaults to True),
applied to core.store.clean_text(raw) (repaired, normalised) exactly like prepare_feedback.
Also records the rules-only `mask_pii` output (used by queries/corrections notes, quarantine
reasons, external-id check) for comparison.
"""

from __future__ import annotations

import json
import re
import sys

from core.store import clean_text
from nlp.text import mask_pii
from nlp.text.pii import PiiMasker, load_ner

# case: (kind, text, pii fragments that must NOT survive, fragments that MUST survive)
# A pii fragment starting with "#" is numeric: compared on digits only (see leak()).
C: list[tuple[str, str, list[str], list[str]]] = []


def add(kind: str, text: str, pii: list[str] | None = None, keep: list[str] | None = None) -> None:
    C.append((kind, text, pii or [], keep or []))


IB = "FR7630006000011234567890189"  # valid FR IBAN (RIB 30006 00001 12345678901 89)
# ---------------- IBAN ----------------
add("iban", f"Remboursez-moi sur mon IBAN: {IB} merci", ["#" + IB[2:]])
add("iban", f"mon iban c'est {IB.lower()} svp", ["#" + IB[2:]])
add("iban", "IBAN FR76 3000 6000 0112 3456 7890 189 pour le remboursement", ["#" + IB[2:]])
add("iban", "iban fr76 3000 6000 0112 3456 7890 189 pour le remboursement", ["#" + IB[2:]])
add("iban", "virement sur FR76-3000-6000-0112-3456-7890-189 svp", ["#" + IB[2:]])
add("iban", "virement sur FR76.3000.6000.0112.3456.7890.189 svp", ["#" + IB[2:]])
add("iban", "Voici mon RIB : 30006 00001 12345678901 89, merci de rembourser", ["#12345678901"])
add("iban", "RIB banque 30006 guichet 00001 compte 12345678901 clé 89", ["#12345678901"])
add("iban", "banque: 30006 guichet: 00001 compte: 12345678901 clé RIB: 89", ["#12345678901"])
add(
    "iban",
    "code banque 30006, code guichet 00001, n° de compte 12345678901, clé 89",
    ["#12345678901"],
)
add("iban", "rib 3000600001123456789 0189 merci", ["#12345678901"])
add("iban", "mon compte 30006000011234567890189 (RIB)", ["#12345678901"])
add("iban", f"IBAN:{IB}", ["#" + IB[2:]])
add("iban", f"IBAN :{IB}.", ["#" + IB[2:]])
add("iban", f"iban={IB}", ["#" + IB[2:]])
add("iban", "FR76 3000 6000 0112\n3456 7890 189 voilà mon iban", ["#" + IB[2:]])
add("iban", "mon iban FR76 3000 6000 0112 3456\n7890 189", ["#" + IB[2:]])
add("iban", "IBAN FR 76 3000 6000 0112 3456 7890 189", ["#" + IB[2:]])
add(
    "iban",
    "IBAN F R 7 6 3 0 0 0 6 0 0 0 0 1 1 2 3 4 5 6 7 8 9 0 1 8 9",
    ["#30006000011234567890189"],
)
add("iban", "IBAN FR7630006 00001 12345678901 89", ["#12345678901"])
add("iban", "IBAN FR76  3000  6000  0112  3456  7890  189", ["#" + IB[2:]])
add("iban", "IBAN FR76 3000 6000 0112 3456 7890 1 89", ["#" + IB[2:]])
add("iban", "IBAN FR76 30006 00001 12345678901 89", ["#" + IB[2:]])
add("iban", "IBAN FR76/3000/6000/0112/3456/7890/189", ["#" + IB[2:]])
add("iban", "IBAN FR76_3000_6000_0112_3456_7890_189", ["#" + IB[2:]])
add(
    "iban",
    "IBAN FR14 2004 1010 0505 0001 3M02 606 (La Banque Postale)",
    ["#20041010050500013", "M02606"],
)
add("iban", "IBAN belge BE71 0961 2345 6769 merci", ["#096123456769"])
add("iban", "mon IBAN belge est BE68 5390 0754 7034", ["#539007547034"])
add("iban", "compte allemand DE89 3704 0044 0532 0130 00", ["#370400440532013000"])
add("iban", "compte espagnol ES91 2100 0418 4502 0005 1332", ["#21000418450200051332"])
add("iban", "IBAN italien IT60 X054 2811 1010 0000 0123 456", ["#0542811101000000123456"])
add("iban", "IBAN suisse CH93 0076 2011 6238 5295 7", ["#0076201162385295"])
add("iban", "IBAN lux LU28 0019 4006 4475 0000", ["#0019400644750000"])
add("iban", "IBAN UK GB29 NWBK 6016 1331 9268 19", ["#60161331926819"])
add("iban", "IBAN NL91ABNA0417164300 merci", ["#0417164300"])
add("iban", "IBAN monégasque MC58 1122 2000 0101 2345 6789 030", ["#1122200001012345678903"])
add(
    "iban",
    "IBAN FR76 3000 6000 0112 3456 7890 188 (erreur de frappe possible)",
    ["#3000600001123456789018"],
)
add("iban", "IBAN FR76 3000 6000 0112 3456 7890 1 (incomplet)", ["#300060000112345678901"])
add("iban", "Mon IBAN est FR7630006000011234567890189.Merci", ["#" + IB[2:]])

# ---------------- cards ----------------
add("card", "j'ai payé avec ma CB 4111 1111 1111 1111 et rien reçu", ["#4111111111111111"])
add("card", "carte n°4111111111111111 débitée deux fois", ["#4111111111111111"])
add("card", "carte n° 5555-5555-5555-4444 débitée", ["#5555555555554444"])
add("card", "carte 5555.5555.5555.4444 débitée", ["#5555555555554444"])
add("card", "ma carte Amex 3782 822463 10005 a été débitée", ["#378282246310005"])
add("card", "ma carte Amex 378282246310005 a été débitée", ["#378282246310005"])
add("card", "CB:4000056655665556 exp 12/26 cvv 123", ["#4000056655665556", "cvv 123"])
add(
    "card",
    "carte 4000 0566 5566 5556, date d'expiration 03/27, cryptogramme 456",
    ["#4000056655665556", "cryptogramme 456"],
)
add("card", "CB 4111 1111 1111 1112 (peut-être une faute de frappe)", ["#4111111111111112"])
add("card", "numéro de carte 4111 11** **** 1111 masqué ?", [], [])
add("card", "carte bancaire 4111  1111  1111  1111", ["#4111111111111111"])
add("card", "carte 4111/1111/1111/1111", ["#4111111111111111"])
add("card", "carte 4111_1111_1111_1111", ["#4111111111111111"])
add("card", "carte n°4111111111111111.", ["#4111111111111111"])
add("card", "CB4111111111111111", ["#4111111111111111"])
add("card", "Discover 6011 1111 1111 1117 refusée", ["#6011111111111117"])
add("card", "carte 4111 1111\n1111 1111", ["#4111111111111111"])
add("card", "les 4 derniers chiffres 1111 de ma carte", [], ["1111"])

# ---------------- phones ----------------
add("phone", "rappelez-moi au +33 6 12 34 56 78 svp", ["#612345678"])
add("phone", "rappelez-moi au +33612345678", ["#612345678"])
add("phone", "rappelez-moi au 0033612345678", ["#612345678"])
add("phone", "rappelez-moi au 0033 6 12 34 56 78", ["#612345678"])
add("phone", "mon numéro 06.12.34.56.78", ["#0612345678"])
add("phone", "mon numéro 06-12-34-56-78", ["#0612345678"])
add("phone", "mon numéro 06 12 34 56 78", ["#0612345678"])
add("phone", "mon numéro 0612345678", ["#0612345678"])
add("phone", "tel 6 12 34 56 78", ["#612345678"])
add("phone", "tél: 612345678", ["#612345678"])
add(
    "phone",
    "mon numéro: zéro six douze trente-quatre cinquante-six soixante-dix-huit",
    ["douze trente-quatre cinquante-six soixante-dix-huit"],
)
add("phone", "appelez le 06 douze 34 56 78", ["#345678"])
add("phone", "service client joint au 01 23 45 67 89 sans réponse", ["#0123456789"])
add("phone", "j'ai appelé le 09 72 34 56 78 (ma box)", ["#0972345678"])
add("phone", "le 0 800 123 456 ne répond jamais", [], [])
add("phone", "numéro belge +32 470 12 34 56", ["#470123456"])
add("phone", "numéro belge 0470 12 34 56", ["#0470123456"])
add("phone", "numéro suisse +41 79 123 45 67", ["#791234567"])
add("phone", "numéro suisse 079 123 45 67", ["#0791234567"])
add("phone", "appelez0612345678 merci", ["#0612345678"])
add("phone", "tel:0612345678", ["#0612345678"])
add("phone", "tél.06.12.34.56.78", ["#0612345678"])
add("phone", "06 12 34 56 78merci", ["#0612345678"])
add("phone", "au 06 12 34 56 78.", ["#0612345678"])
add("phone", "portable 06 1234 5678", ["#0612345678"])
add("phone", "portable 061 234 5678", ["#0612345678"])
add("phone", "portable 06/12/34/56/78", ["#0612345678"])
add("phone", "portable 06 12 34 56 78 ou 07 98 76 54 32", ["#0612345678", "#0798765432"])
add("phone", "(+33) 6 12 34 56 78", ["#612345678"])
add("phone", "+33 (0)6 12 34 56 78", ["#612345678"])
add("phone", "+33 (0) 6 12 34 56 78", ["#612345678"])
add("phone", "06 12 34 56 7 8", ["#0612345678"])
add("phone", "0 6 1 2 3 4 5 6 7 8", ["#0612345678"])
add("phone", "whatsapp 33612345678", ["#612345678"])
add("phone", "mon fixe 04.78.12.34.56 à Lyon", ["#0478123456"])
add("phone", "numéro DOM 0690 12 34 56", ["#0690123456"])
add("phone", "+262 692 12 34 56 (La Réunion)", ["#692123456"])
add("phone", "numéro UK +44 7911 123456", ["#7911123456"])
add("phone", "06 12 34 56 78 / 06 98 76 54 32", ["#0612345678", "#0698765432"])
add("phone", "O6 12 34 56 78 (avec la lettre O)", ["#612345678"])
add("phone", "0612345678/0698765432", ["#0612345678", "#0698765432"])
add("phone", "+33 6-12-34-56-78", ["#612345678"])
add("phone", "+33.6.12.34.56.78", ["#612345678"])
add("phone", "mon 06 : 12 34 56 78", ["#12345678"])
add("phone", "tel 06 12 34 56 78, rappel demandé", ["#0612345678"])
add("phone", "mon numéro 06 12 34 56 78 - merci", ["#0612345678"])

# ---------------- e-mails / URLs ----------------
add("email", "écrivez à jean.dupont@exemple.fr svp", ["jean.dupont", "exemple.fr"])
add("email", "écrivez à jean[at]exemple.fr", ["jean", "exemple"])
add("email", "écrivez à jean (at) exemple (dot) fr", ["jean", "exemple"])
add("email", "écrivez à jean arobase exemple point fr", ["jean", "exemple"])
add("email", "écrivez à jean point dupont arobase gmail point com", ["jean point dupont"])
add("email", "mail: jean.dupont@exemple.co.uk", ["jean.dupont"])
add("email", "MAIL: JEAN.DUPONT@EXEMPLE.FR", ["jean.dupont"])
add("email", "mailto:jean.dupont@exemple.fr", ["jean.dupont"])
add(
    "email",
    "lien https://exemple.fr/reset?email=jean.dupont@exemple.fr&token=abc123",
    ["jean.dupont", "abc123"],
)
add("email", "exemple.fr/compte?token=9f8e7d6c5b4a", ["9f8e7d6c5b4a"])
add("email", "lien reçu: exemple.com/unsubscribe&email=jean.dupont%40exemple.fr", ["jean.dupont"])
add("email", "jean.dupont%40exemple.fr", ["jean.dupont"])
add("email", "écrivez à jean@exemple", ["jean@exemple"])
add("email", "écrivez à jean.dupont @ gmail . com", ["jean.dupont"])
add("email", "écrivez à jean.dupont@gmail", ["jean.dupont"])
add("email", "écrivez à jean @ exemple.fr", ["jean"])
add("email", "écrivez à jean.dupont @exemple.fr", ["jean.dupont"])
add("email", "écrivez à jean.dupont@ exemple.fr", ["jean.dupont"])
add("email", "écrivez à jean.dupont(at)exemple.fr", ["jean.dupont"])
add("email", "écrivez à jean.dupont [at] exemple [point] fr", ["jean.dupont"])
add("email", "écrivez à jean.dupont chez gmail point com", ["jean.dupont"])
add("email", "écrivez à jean.dupont@gmail,com", ["jean.dupont"])
add("email", "écrivez à jean.dupont arobase gmail.com", ["jean.dupont"])
add("email", "écrivez à jean_dupont@laposte.net", ["jean_dupont"])
add("email", "écrivez à jean-dupont+sav@exemple.fr", ["jean-dupont"])
add("email", "écrivez à jean.dupont＠exemple.fr", ["jean.dupont"])
add("email", "écrivez à jérôme.lefèvre@exemple.fr", ["jérôme.lefèvre"])
add("email", "écrivez à jean.dupont@exemple.fr.", ["jean.dupont"])
add("email", "écrivez à <jean.dupont@exemple.fr>", ["jean.dupont"])
add("email", "écrivez à jean.dupont@exemple.paris", ["jean.dupont"])
add("email", "écrivez à jean.dupont@orange.fr", ["jean.dupont"])
add("email", "mon compte: j.dupont75 sur le site", [], [])
add("email", "https://www.exemple.fr/suivi?id=123&email=jean.dupont@exemple.fr", ["jean.dupont"])
add("email", "suivi: exemple.fr/track?nom=Dupont&tel=0612345678", ["Dupont", "#0612345678"])

# ---------------- NIR ----------------
add("nir", "mon numéro de sécu 1 85 05 78 006 084 91", ["#185057800608"])
add("nir", "mon numéro de sécu 185057800608491", ["#185057800608"])
add("nir", "n° sécurité sociale 1850578006084", ["#185057800608"])
add("nir", "NIR: 2 88 06 75 116 082 88", ["#288067511608"])
add("nir", "sécu 2880675116082 clé 88", ["#288067511608"])
add("nir", "sécu 1 94 02 2A 123 456 03", ["#123456", "2A"])
add("nir", "carte vitale 1.85.05.78.006.084.91", ["#185057800608"])
add("nir", "carte vitale 1-85-05-78-006-084-91", ["#185057800608"])
add("nir", "carte vitale 1 85 05 78 006 084 - 91", ["#185057800608"])
add("nir", "carte vitale 185 05 78 006 084 91", ["#185057800608"])
add("nir", "sécu 1 85 05 78 006 084", ["#185057800608"])
add("nir", "sécu 1850578006084 91", ["#185057800608"])
add("nir", "sécu 1 85 05 99 006 084 91 (né à l'étranger)", ["#185059900608"])
add("nir", "sécu n°185057800608491, merci", ["#185057800608"])
add("nir", "numéro sécu: 1 85 05 78 006 084, clé 91", ["#185057800608"])
add("nir", "sécu 2 88 06 2B 116 082 88", ["#288062", "#116082"])
add("nir", "sécu 1 85 05 78 006 084 91.", ["#185057800608"])
add("nir", "secu 1 85 05 78 006 084 / 91", ["#185057800608"])

# ---------------- names ----------------
add("name", "Mme Dupont a été très aimable", ["Dupont"])
add("name", "M. Martin m'a raccroché au nez", ["Martin"])
add("name", "j'ai eu madame Le Goff au téléphone", ["Goff"])
add("name", "le livreur Karim a été super", ["Karim"])
add("name", "la conseillère Sophie a réglé le problème", ["Sophie"])
add("name", "Jean-Pierre Dupont du SAV m'a aidé", ["Jean-Pierre", "Dupont"])
add("name", "j'ai eu jean-pierre dupont au téléphone", ["jean-pierre", "dupont"])
add("name", "merci à mme dupont pour son aide", ["dupont"])
add("name", "le livreur karim a jeté le colis", ["karim"])
add("name", "merci à Sophie du service client", ["Sophie"])
add("name", "Karim le livreur a jeté le colis", ["Karim"])
add("name", "Un grand merci à Nathalie qui a tout réglé", ["Nathalie"])
add("name", "Je m'appelle Jean Dupont et je suis mécontent", ["Jean", "Dupont"])
add("name", "je m'appelle jean dupont", ["jean", "dupont"])
add("name", "signé: Marie Lefèvre", ["Marie", "Lefèvre"])
add("name", "Cordialement, Marie Lefèvre", ["Marie", "Lefèvre"])
add("name", "Cordialement,\nMarie Lefèvre", ["Marie", "Lefèvre"])
add("name", "MME DUPONT a été odieuse", ["DUPONT"])
add("name", "Mr Durand n'a rien voulu savoir", ["Durand"])
add("name", "Madame Marie-Claire Dubois-Martin, conseillère", ["Marie-Claire", "Dubois-Martin"])
add("name", "le technicien, Mohamed, est venu en retard", ["Mohamed"])
add("name", "le technicien (Mohamed) est venu en retard", ["Mohamed"])
add("name", "la conseillère Mme Petit m'a aidé", ["Petit"])
add("name", "mon conseiller M. N'Diaye est parfait", ["N'Diaye"])
add("name", "mon conseiller M. Van der Berg est parfait", ["Van", "Berg"])
add("name", "La livreuse Chloé était adorable", ["Chloé"])
add("name", "Le chauffeur, un certain Kevin, a été impoli", ["Kevin"])
add("name", "Vendeur : Thomas, très pro", ["Thomas"])
add("name", "Votre conseiller Julien Moreau a été top", ["Julien", "Moreau"])
add("name", "Vendeuse Léa au top !", ["Léa"])
add("name", "Monsieur de La Fontaine était absent", ["Fontaine"])
add("name", "Merci Mme. Dupont", ["Dupont"])
add("name", "le docteur Martin est génial", ["Martin"])
add("name", "Dr Martin est génial", ["Martin"])
add("name", "Pr. Martin est génial", ["Martin"])
add("name", "Je suis Mme Nguyen, cliente depuis 10 ans", ["Nguyen"])
add("name", "MM. Dupont et Martin m'ont reçu", ["Dupont", "Martin"])
add("name", "Mlle Durand était absente", ["Durand"])
add("name", "M Martin n'a rien fait", ["Martin"])
add("name", "le livreur, Karim, a jeté le colis", ["Karim"])
add("name", "le livreur de DPD, Karim, a jeté le colis", ["Karim"])
add("name", "Madame DUPONT Marie, cliente", ["DUPONT", "Marie"])
add("name", "merci à Fatou et à Mamadou pour leur accueil", ["Fatou", "Mamadou"])
add("name", "nom: Dupont prénom: Jean", ["Dupont", "Jean"])

# ---------------- addresses ----------------
add(
    "address",
    "livré au 12 rue des Lilas 75011 Paris au lieu de chez moi",
    ["12 rue des Lilas", "Lilas"],
)
add("address", "adresse: 12 bis avenue Victor Hugo, 69003 Lyon", ["Victor Hugo"])
add("address", "j'habite 5, rue de la Paix à Paris", ["rue de la Paix"])
add("address", "livrez au 3 place du Marché, 13001 Marseille", ["place du Marché"])
add("address", "BP 123 31000 Toulouse Cedex", ["BP 123"])
add("address", "adresse pro: 10 rue Jean Jaurès 92100 Boulogne-Billancourt Cedex", ["Jean Jaurès"])
add("address", "12 rue des lilas 75011 paris", ["rue des lilas"])
add("address", "au 12, Rue des Lilas, Paris 11e", ["Rue des Lilas"])
add("address", "colis déposé au 47 boulevard Saint-Michel 75005 Paris", ["Saint-Michel"])
add("address", "résidence Les Pins bât B apt 12, 06000 Nice", ["Les Pins"])
add("address", "livré au 8 impasse des Rosiers à Brest", ["impasse des Rosiers"])
add("address", "lieu-dit La Croix 56000 Vannes", ["La Croix"])
add("address", "livré au 8 chemin de la Fontaine aux Loups 44000 Nantes", ["Fontaine aux Loups"])
add("address", "12 r. des Lilas 75011 Paris", ["des Lilas"])
add("address", "12 Rue Des Lilas 75011 PARIS", ["Des Lilas"])
add("address", "Appartement 4, 2ème étage, 12 rue des Lilas", ["rue des Lilas"])
add("address", "CS 70001 75011 Paris Cedex 11", ["CS 70001"])
add("address", "livré au 12 rue des Lilas alors que j'habite ailleurs", ["rue des Lilas"])
add(
    "address",
    "j'habite au 3 avenue de la République et le colis est parti ailleurs",
    ["avenue de la République"],
)
add("address", "12 rue du Maréchal Leclerc de Hauteclocque 75011 Paris", ["Hauteclocque"])
add(
    "address",
    "Résidence Les Pins, 4 allée des Chênes, 33000 Bordeaux",
    ["allée des Chênes", "Les Pins"],
)
add("address", "je suis au 27 rue Lamartine depuis 3 ans", ["rue Lamartine"], ["depuis 3 ans"])
add("address", "au 7 rue Victor Hugo, Lyon 3e", ["rue Victor Hugo"])
add("address", "12bis rue des Lilas, 75011 Paris", ["rue des Lilas"])

# ---------------- not PII: order / tracking / dates / prices ----------------
add("order", "commande n° 123456789 jamais reçue", [], ["123456789"])
add("order", "commande 40593821 jamais reçue", [], ["40593821"])
add("order", "colis 6A12345678901 bloqué", [], ["6A12345678901"])
add("order", "suivi Colissimo 8R00123456789 introuvable", [], ["8R00123456789"])
add("order", "numéro de suivi 1Z999AA10123456784 UPS", [], ["1Z999AA10123456784"])
add("order", "facture FA-2024-00123 erronée", [], ["FA-2024-00123"])
add("order", "ma commande #A1B2C3D4 est en retard", [], ["A1B2C3D4"])
add("order", "commande 1234567890123 (13 chiffres)", [], ["1234567890123"])
add("order", "ticket 0612345678 ouvert au SAV", [], ["0612345678"])
add("order", "référence produit 3760123456789 en rupture", [], ["3760123456789"])
add("date", "livré le 12/03/2024 au lieu du 05/03/2024", [], ["12/03/2024", "05/03/2024"])
add("date", "livré le 12.03.2024 à 14h30", [], ["12.03.2024", "14h30"])
add("date", "livré le 12-03-2024", [], ["12-03-2024"])
add("date", "commandé le 2024-03-12, reçu le 2024-03-20", [], ["2024-03-12", "2024-03-20"])
add("date", "entre le 12/03/2024 et le 15/03/2024 14:30", [], ["12/03/2024", "15/03/2024"])
add("date", "du 01 02 2024 au 15 02 2024", [], ["01 02 2024", "15 02 2024"])
add("date", "livré 12 03 2024 10 h", [], ["12 03 2024"])
add("price", "payé 29,99 € pour rien", [], ["29,99"])
add("price", "payé 1 299,99 € pour un frigo", [], ["1 299,99"])
add("price", "facturé 1.299,00€ au lieu de 999€", [], ["1.299,00", "999"])
add("price", "remboursé 12 345,67 euros", [], ["12 345,67"])
add("price", "abonnement 19,99€/mois depuis 2019", [], ["19,99", "2019"])
add("price", "10 colis sur 12 reçus, 3 cassés", [], ["10 colis", "12", "3 cassés"])
add("price", "j'ai attendu 45 minutes au 3975", [], ["45 minutes", "3975"])
add("price", "commande de 2 x 149,90 € = 299,80 €", [], ["149,90", "299,80"])
add("price", "code postal 75011 mal saisi", [], [])
add("price", "le magasin de Paris 15 est nul", [], ["Paris"])
add("price", "je suis client depuis 2015 et 2 000 000 de points", [], ["2015"])
add("misc", "Paris est une belle ville mais la livraison à Lyon est lente", [], ["Paris", "Lyon"])
add("misc", "La Poste et Chronopost sont nuls", [], ["Poste", "Chronopost"])
add("misc", "Le produit Samsung Galaxy S23 est top", [], ["Samsung", "Galaxy"])
add("misc", "J'ai commandé chez Darty puis chez Boulanger", [], ["Darty", "Boulanger"])
add("misc", "le conseiller Crédit Agricole ne répond pas", [], ["Crédit Agricole"])
add("misc", "le technicien Enedis est passé", [], ["Enedis"])
add("misc", "le livreur Uber Eats s'est trompé", [], ["Uber"])
add("misc", "le livreur Colissimo a sonné", [], ["Colissimo"])
add("misc", "mon conseiller Pôle Emploi m'a aidé", [], ["Pôle"])
add("misc", "la vendeuse Zara était gentille", [], ["Zara"])
add("price", "montant prélevé 1234567,89 € ???", [], ["1234567,89"])
add("date", "livré le 06 12 2023 au lieu du 08 12 2023", [], ["06 12 2023"])
add("date", "RDV le 06/12 à 12h34", [], ["06/12", "12h34"])
add("order", "SIRET de la boutique 732 829 320 00074", [], ["732 829 320 00074"])
add(
    "misc",
    "Victor Hugo est mon auteur préféré, la livraison du livre était rapide",
    [],
    ["Victor Hugo"],
)


# ---------------- twenty-fourth session (2026-12-06): a DPO's spellings ----------------
add("name", "J'ai eu affaire à M. Le Gall qui était super", ["Gall"])
add("name", "Mme Le Goff m'a bien aidée", ["Goff"])
add("name", "Jean-Yves Le Bris du SAV a été top", ["Yves", "Bris"])
add("name", "Mr De La Fontaine a répondu rapidement", ["Fontaine"])
add("name", "Mme Da Silva était très gentille", ["Silva"])
add("name", "merci à Mohamed Ben Ali pour son aide", ["Mohamed", "Ali"])
add("name", "M. Van den Berg a livré en retard", ["Berg"])
add("name", "Mr Van Den Berg a été top", ["Berg"])
add("name", "M. van der Meer a appelé", ["Meer"])
add("name", "M. de Villiers a appelé", ["Villiers"])
add("name", "Mme de La Fontaine a été top", ["Fontaine"])
add("name", "J'ai eu Karim Ben Salah au téléphone", ["Karim", "Salah"])
add("name", "J'ai eu Sophie Le Gall au téléphone", ["Sophie", "Gall"])
add("name", "la conseillère Ana Dos Santos m'a aidé", ["Santos"])
add("name", "le livreur Ahmed El Fassi a été top", ["Ahmed", "Fassi"])
add("name", "Cordialement, Luca Di Stefano", ["Luca", "Stefano"])
add("name", "Cordialement, Marie-Claire De La Tour", ["Claire", "Tour"])
add("name", "signé Yann Le Goff", ["Yann", "Goff"])
add("name", "Très bon accueil de Marie Le Pen", ["Marie", "Pen"])
add("name", "je m'appelle karim et je suis déçu", ["karim"], ["déçu"])
add("name", "je m'appelle sophie martin, cliente depuis 10 ans", ["sophie", "martin"])
add("name", "Mme Dupont de Lyon m'a rappelé", ["Dupont"], ["Lyon"])
add("name", "livré par Kevin de Chronopost", ["Kevin"], ["Chronopost"])
add("name", "Suivez-moi @jean_dupont sur insta", ["jean_dupont"])
add("misc", "Joyeuses Pâques à toute l'équipe", [], ["Joyeuses Pâques"])
add("misc", "Joyeux Noël à tous, livraison rapide", [], ["Joyeux Noël"])
add("misc", "Bonne Année à toute l'équipe, merci", [], ["Bonne Année"])
add("misc", "Bonne Fête des Mères à toutes", [], ["Fête des Mères"])
add("misc", "commandé pendant le Black Friday, jamais reçu", [], ["Black Friday"])
add("misc", "Bonne Saint-Valentin !", [], ["Saint-Valentin"])
add("misc", "Cyber Monday une arnaque", [], ["Cyber Monday"])
add("misc", "Merci et Joyeux Noël ! Jean-Marc Joyeuses Pâques", ["Jean-Marc"], ["Joyeuses Pâques"])
add("misc", "le monsieur de SOS Phone est très sympa", [], ["SOS Phone"])
add("misc", "merci @SNCF pour rien", [], ["@SNCF"])
add("misc", "livré à Lyon au lieu de Paris", [], ["Lyon", "Paris"])
add("misc", "colis livré au relais de Villeurbanne", [], ["Villeurbanne"])
add("misc", "Le vendeur Fnac m'a conseillé", [], ["Fnac"])
add("misc", "iPhone 15 Pro Max reçu cassé", [], ["iPhone 15 Pro Max"])
add("misc", "Mondial Relay a perdu le colis", [], ["Mondial Relay"])
add("misc", "firmware 1.0.0.12 bogué", [], ["1.0.0.12"])
add("secret", "mdp : azerty merci", ["azerty"], ["merci"])
add("secret", "mdp : azerty cordialement", ["azerty"])
add("secret", "mot de passe : soleil bonne journée", ["soleil"], ["bonne journée"])
add("secret", "mdp: azerty bonjour", ["azerty"])
add("secret", "identifiant: jdupont mot de passe: azerty", ["jdupont", "azerty"])
add("secret", "login : jdupont mdp : azerty", ["jdupont", "azerty"])
add("secret", "mot de passe : oublié, impossible de me connecter", [], ["oublié"])
add("card", "carte 4111 1111 1111 1111 exp 09/27 cvv 123", ["#4111111111111111", "cvv 123"])
add("card", "expire le 09/27, cryptogramme 123", ["cryptogramme 123"])
add("card", "CVV: 123", ["#123"])
add("card", "code cvv 123", ["#123"])
add("ip", "mon IP 192.168.1.24 est bloquée", ["#192168124"])
add("ip", "mon adresse IP : 86.245.12.3 bannie", ["#86245123"])
add("ip", "IPv6 2a01:cb00:1234:5678::1 bloquée", ["2a01:cb00"])
add("order", "mon n° client 12345678, colis jamais reçu", ["#12345678"])
add("order", "numéro client 12345678", ["#12345678"])
add("order", "mon numéro de client: AB123456", ["AB123456"])
add("id", "ma plaque AB-123-CD a été relevée", ["AB-123-CD"])
add("id", "stationné devant, immatriculation AB-123-CD", ["AB-123-CD"])
add("email", "écrivez à jean.dupont+sav@mail.exemple.fr", ["jean.dupont", "exemple"])
add("email", "jean.dupont+amazon@sub.domaine.co.uk merci", ["jean.dupont", "domaine"])
add("email", "mon mail prenom.nom@etu.univ-lyon1.fr", ["prenom.nom", "univ-lyon1"])
add("phone", "rappelez-moi au +33 (0)6 12 34 56 78 merci", ["#612345678"])
add("phone", "rappelez-moi au 06.12.34.56.78 svp", ["#0612345678"])
add("phone", "rappelez-moi au 0612345678 svp", ["#0612345678"])
add("phone", "rappelez au +32 2 512 34 56", ["#25123456"])
add("phone", "gsm belge 0475 12 34 56", ["#0475123456"])
add("phone", "gsm +32 475 12 34 56", ["#475123456"])
add("phone", "tel suisse +41 22 345 67 89", ["#223456789"])
add("phone", "tel suisse 022 345 67 89", ["#0223456789"])
add("phone", "tel maroc +212 6 12 34 56 78", ["#612345678"])
add("phone", "tel maroc 0612-345678", ["#0612345678"])
add("phone", "whatsapp +212612345678", ["#612345678"])
add("phone", "appelez le 0612 34 56 78", ["#0612345678"])
add("phone", "+33(0)612345678", ["#612345678"])
add("address", "livré au 12 bis rue du Général-de-Gaulle, 75012 Paris", ["Général-de-Gaulle"])
add("address", "12 bis, rue du Général Leclerc 75012 Paris", ["Leclerc"])
add("address", "adresse : 3 allée des Mimosas, 33000 Bordeaux", ["Mimosas"])
add("address", "BP 123 75012 Paris", ["BP 123"])
add("address", "adresse: 5 av. Jean Jaurès 69007 Lyon", ["Jaurès"])
add("address", "j'habite 10 place de la Mairie à Nantes", ["place de la Mairie"])

# ---------------- twenty-fifth session (2026-12-06): 100 more spellings ----------------
P = "#0612345678"
for t in [
    "appelez-moi au 06-12-34-56-78 svp",
    "mon tel: 06_12_34_56_78",
    "mon numéro 0033 6 12 34 56 78",
    "mon numéro 0033612345678",
    "joignable au 06 12 34\n56 78",
    "joignable au 06 12\n34 56 78 merci",
    "portable : 06.12.34.56.78.",
    "tel:+33612345678",
    "(06) 12 34 56 78 de 9h à 12h",
    "+33 6.12.34.56.78 (portable)",
    "+33-6-12-34-56-78",
    "numéro: 06 1234 5678",
    "+33 (0) 6 12 34 56 78, rappel urgent",
    "0033 (0)6 12 34 56 78",
    "06 12 34 56 78\n(portable)",
    "mon numéro est le 06 12 34 56 78.",
]:
    add("phone", t, [P])
add("phone", "tél. 01 42 68 53 00 (fixe)", ["#0142685300"])
add("phone", "appelez le 09 72 10 10 10", ["#0972101010"])
add("phone", "06 12 34 56 78 / 07 12 34 56 78", [P, "#0712345678"])
add("phone", "appelez le 06 12 34 56 78 entre 9h et 12h", [P], ["entre 9h et 12h"])
E = ["jean", "dupont"]
for t in [
    "jean point dupont arobase free point fr",
    "jean.dupont [at] free.fr",
    "jean.dupont [at] free [dot] fr",
    "jean.dupont AT gmail DOT com",
    "jean.dupont[arobase]orange.fr",
    "jean.dupont (arobase) laposte.net",
    "JEAN.DUPONT@GMAIL.COM",
    "mail : jean-dupont@hotmail.fr.",
    "<jean.dupont@wanadoo.fr>",
    "mailto:jean.dupont@sfr.fr",
    "jean_dupont@yahoo.fr, merci",
    "jean dupont at gmail dot com",
    "jean.dupont @ free . fr",
    "jean.dupont@gmail,com",
    "tél : 06.12.34.56.78 - mail : jean.dupont@free.fr",
]:
    add("email", t, E)
add("address", "12 bis rue de la Paix, 75002 Paris", ["rue de la Paix", "75002"])
add("address", "12 ter avenue Foch 75116 Paris", ["Foch", "75116"])
add("address", "12bis rue de la Paix 75002 Paris", ["rue de la Paix", "75002"])
add("address", "12 BIS RUE DE LA PAIX 75002 PARIS", ["PAIX", "75002"])
add(
    "address",
    "livré au 45, boulevard Haussmann 75009 Paris au lieu de chez moi",
    ["Haussmann", "75009"],
    ["au lieu de chez moi"],
)
add("address", "Mon adresse: 7 impasse du Moulin 44000 Nantes", ["impasse du Moulin", "44000"])
add("address", "lieu-dit Les Granges 24200 Sarlat", ["Granges", "24200"])
add("address", "lieu-dit La Croix, colis perdu", ["La Croix"], ["colis perdu"])
add("address", "lieu dit Les Granges, colis jamais arrivé", ["Granges"], ["colis jamais arrivé"])
add("address", "livré à la résidence Les Pins", ["Les Pins"])
add("address", "chez Mme Dupont, 12 rue de la Paix", ["Dupont", "rue de la Paix"])
add("address", "BP 123 - 75002 Paris", ["#123", "75002"])
add("address", "route de Lyon 38000 Grenoble", ["38000"])
add("address", "livraison à Lyon en retard", [], ["Lyon"])
add("address", "le colis est parti de Paris et bloqué à Marseille", [], ["Paris", "Marseille"])
add("address", "je suis à Paris, colis bloqué à Roissy", [], ["Paris", "Roissy"])
add("address", "Livraison à Marseille rapide", [], ["Marseille"])
add("address", "je vis à Marseille depuis 10 ans", [], ["Marseille"])
add("address", "magasin de Lyon Part-Dieu", [], ["Lyon Part-Dieu"])
add("address", "Decathlon Rennes", [], ["Decathlon Rennes"])
add("address", "Carrefour Market Rennes", [], ["Carrefour Market Rennes"])
add("iban", "IBAN : FR76 3000 6000 0112 3456 7890 189.", ["#" + IB[2:]])
add("iban", "iban: FR76 30006000011234567890189", ["#" + IB[2:]])
add("iban", "IBAN BE68 5390 0754 7034", ["#539007547034"])
add("iban", "IBAN DE89 3704 0044 0532 0130 00", ["#370400440532013000"])
add("card", "carte 4111-1111-1111-1111 refusée", ["#4111111111111111"])
add("card", "CB 4970 1012 3456 7890", ["#4970101234567890"])
add("card", "4111.1111.1111.1111", ["#4111111111111111"])
add("card", "ma carte AMEX 3782 822463 10005", ["#378282246310005"])
add("nir", "nir 2 85 03 75 123 456 14", ["#2850375123456"])
add("nir", "numéro de sécu: 185037512345641", ["#1850375123456"])
add("nir", "ma carte vitale 1 85 03 75 123 456", ["#1850375123456"])
add("id", "plaque d'immatriculation : AB-123-CD", ["AB-123-CD"])
add("id", "ma voiture immatriculée AB 123 CD", ["AB 123 CD"])
add("id", "le modèle AB-123-CD est sorti", [], ["AB-123-CD"])
for t, pii in [
    ("je m'appelle Pierre Dupont", ["Pierre", "Dupont"]),
    ("je m'appelle Rose", ["Rose"]),
    ("je m'appelle Olive Martin", ["Olive", "Martin"]),
    ("mon nom est Martin", ["Martin"]),
    ("mon nom est Pierre Martin et j'attends", ["Pierre", "Martin"]),
    ("mon prénom est Kevin", ["Kevin"]),
    ("mon prénom c'est Kevin", ["Kevin"]),
    ("mon prénom est kevin et j'attends", ["kevin"]),
    ("mon nom de famille est Kowalczyk", ["Kowalczyk"]),
    ("mon nom, c'est Dupont", ["Dupont"]),
    ("signé Jean Dupont", ["Jean", "Dupont"]),
    ("signé : Marie", ["Marie"]),
    ("Cordialement,\nPierre MARTIN", ["Pierre", "MARTIN"]),
    ("Cordialement\nJEAN-FRANÇOIS DUPONT", ["JEAN-FRANÇOIS", "DUPONT"]),
    ("Bien à vous,\nÉlodie Lefèvre-Durand", ["Élodie", "Lefèvre"]),
    ("JE M'APPELLE PIERRE DUPONT", ["PIERRE", "DUPONT"]),
    ("MME DUPONT a refusé", ["DUPONT"]),
    ("Mme Lefèvre-Durand a été odieuse", ["Lefèvre"]),
    ("le conseiller Pierre m'a raccroché au nez", ["Pierre"]),
    ("la vendeuse Rose était adorable", ["Rose"]),
    ("merci à Olive pour son aide", ["Olive"]),
    ("Martin le livreur a été top", ["Martin"]),
    ("M. Martin a été très aimable", ["Martin"]),
    ("je m'appelle Hélène-Chloé Bérénice", ["Hélène", "Bérénice"]),
    ("Cordialement,\nF. Dupont-Moretti", ["Dupont"]),
    ("-- \nJean Dupont\n06 12 34 56 78", ["Jean", "Dupont", P]),
    ("Jean Dupont\n12 rue des Lilas\n75011 Paris", ["Jean", "Dupont", "Lilas", "75011"]),
    ("Mr DUPONT Jean", ["DUPONT", "Jean"]),
    ("Jean-Pierre DUPONT", ["Jean-Pierre", "DUPONT"]),
    ("je m'appelle jean-pierre", ["jean-pierre"]),
    ("prénom : Océane", ["Océane"]),
    ("nom de famille : Nguyen", ["Nguyen"]),
    ("Nom: N'Diaye", ["Diaye"]),
    ("Elle s'appelle Rose et elle était top", ["Rose"]),
    ("Je suis Pierre, client depuis 10 ans", ["Pierre"]),
    ("Monsieur Pierre Rose", ["Pierre", "Rose"]),
    ("Madame Olive", ["Olive"]),
    ("Pierre du SAV m'a aidé", ["Pierre"]),
    ("Signé: JEAN DUPONT", ["JEAN", "DUPONT"]),
    ("Bonjour, je m'appelle Zoé Ngô-Lê", ["Zoé", "Ngô"]),
    ("Mon nom est DUPONT-MORETTI", ["DUPONT"]),
]:
    add("name", t, pii)
for t, keep in [
    ("j'ai acheté un iPhone 14 Pro", ["iPhone 14 Pro"]),
    ("La Roche-Posay crème top", ["La Roche-Posay"]),
    ("produit Rose Gold super", ["Rose Gold"]),
    ("couleur rose pâle, pierre précieuse fausse", ["rose", "pierre"]),
    ("huile d'olive Puget excellente", ["olive Puget"]),
    ("Saint-Martin, livraison ok", ["Saint-Martin"]),
    ("Pierre et Vacances séjour nul", ["Pierre et Vacances"]),
    ("commande passée chez Boulanger", ["Boulanger"]),
    ("taille 38 couleur olive", ["olive"]),
    ("mon prénom est mal écrit sur le colis", ["mal écrit"]),
    ("Louis Vuitton sac abîmé à la livraison", ["Louis Vuitton"]),
    ("Christian Dior parfum reçu cassé", ["Christian Dior"]),
    ("Jean Paul Gaultier parfum", ["Jean Paul Gaultier"]),
    ("parfum Jean-Paul Gaultier", ["Jean-Paul Gaultier"]),
    ("Pierre Hermé macarons", ["Pierre Hermé"]),
    ("Yves Rocher top", ["Yves Rocher"]),
    ("Charles de Gaulle aéroport retard", ["Charles de Gaulle"]),
]:
    add("misc", t, [], keep)

DIGITS = re.compile(r"\d")


def _lcs_digits(a: str, b: str) -> str:
    """Longest common substring of two digit strings."""
    best = ""
    for i in range(len(a)):
        for j in range(i + len(best) + 1, len(a) + 1):
            if a[i:j] in b:
                best = a[i:j]
            else:
                break
    return best


def leaks(pii: list[str], out: str) -> list[str]:
    found = []
    out_digits = "".join(DIGITS.findall(out))
    for frag in pii:
        if frag.startswith("#"):
            want = "".join(DIGITS.findall(frag[1:]))
            common = _lcs_digits(want, out_digits)
            if len(common) >= 5 or (len(want) < 5 and common == want):
                found.append(f"digits {common} (of {want})")
        elif frag.lower() in out.lower():
            found.append(frag)
    return found


def overmask(keep: list[str], out: str) -> list[str]:
    return [k for k in keep if k not in out]


def main() -> None:
    ner = load_ner()
    if ner is None:
        sys.exit("NER pipeline did not load: the ingest configuration cannot be reproduced")
    masker = PiiMasker(nlp=ner)
    assert masker.nlp is not None
    rows = []
    seen = set()
    for kind, text, pii, keep in C:
        assert text not in seen, text
        seen.add(text)
        prepared = clean_text(text)  # what prepare_feedback hands the masker
        out = masker(prepared)
        out_rules = mask_pii(prepared)
        lk = leaks(pii, out)
        om = overmask(keep, out)
        rows.append(
            {
                "kind": kind,
                "input": text,
                "prepared": prepared,
                "masked": out,
                "masked_rules_only": out_rules,
                "leak": bool(lk),
                "leaked": lk,
                "leak_rules_only": leaks(pii, out_rules),
                "overmask": bool(om),
                "overmasked": om,
                "changed_by_ner": out != out_rules,
            }
        )
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    print(f"{'kind':8} {'tried':>5} {'leaks':>5} {'over':>5}")
    for k in kinds:
        rs = [r for r in rows if r["kind"] == k]
        print(
            f"{k:8} {len(rs):5} {sum(r['leak'] for r in rs):5} {sum(r['overmask'] for r in rs):5}"
        )
    leaked, over = sum(r["leak"] for r in rows), sum(r["overmask"] for r in rows)
    print(f"{'TOTAL':8} {len(rows):5} {leaked:5} {over:5}")
    print(
        f"rules-only mask_pii leaks: {sum(bool(r['leak_rules_only']) for r in rows)}; "
        f"outputs changed by NER: {sum(r['changed_by_ner'] for r in rows)}"
    )
    print("\n=== LEAKS (ingest config: rules + NER) ===")
    for r in rows:
        if r["leak"]:
            print(
                f"[{r['kind']}] {r['input']!r}\n    -> {r['masked']!r}\n    survived: {r['leaked']}"
            )
    print("\n=== OVER-MASKS ===")
    for r in rows:
        if r["overmask"]:
            print(
                f"[{r['kind']}] {r['input']!r}\n    -> {r['masked']!r}\n    lost: {r['overmasked']}"
            )
    print("\n=== OK / other (for eyeballing) ===")
    for r in rows:
        if not r["leak"] and not r["overmask"]:
            print(f"[{r['kind']}] {r['input']!r} -> {r['masked']!r}")


if __name__ == "__main__":
    main()
