"""Hand-written French polarity lexicon for customer feedback (written for this project).

Keys are lower-case, accent-folded. A trailing "*" is a prefix entry ("decev*" covers
décevant, décevante, déception is listed apart). Values: -3 (very negative) .. +3.
"""

from __future__ import annotations

_POSITIVE = """
large_choix:1.2 grand_choix:1.2 beaucoup_de_choix:1.2 tres_large_choix:1.6 fast:1.4 quick:1.2
quickly:1.2 excellent:2.6 nice:1.5 happy:1.8 recommend:1.6 amazing:2.4 thanks:1.2 probant*:1.2
convient:0.8 conviennent:0.8 ergonomique*:1.2 bon:1.5 bonne:1.5 bons:1.5 bonnes:1.5 bien:1.2
tres_bien:2 super:2 top:2 genial*:2.5 excellent*:2.8 parfait*:2.8 impeccable*:2.5 nickel:2.3
merveill*:2.6 magnifique*:2.5 formidable*:2.5 fantastique*:2.5 extraordinaire*:2.5
exceptionnel*:2.6 sublime*:2.5 superbe*:2.4 remarquable*:2.2 agreable*:1.8 sympa*:1.6 joli*:1.5
beau:1.5 belle:1.5 beaux:1.5 belles:1.5 ravi:2.3 ravis:2.3 ravies:2.3 satisfait*:1.8
satisfaction:1.6 content*:1.8 heureu*:1.8 enchant*:2.2 conquis*:2 recommand*:1.8 je_conseille:1.2
je_vous_le_conseille:1.4 a_conseiller:1.2 efficace*:1.8 efficacite:1.5 rapide*:1.6 rapidement:1.4
rapidite:1.5 vite:0.8 fiable*:1.6 solide*:1.4 robuste*:1.5 pratique*:1.4 confortable*:1.6
conforme*:1.4 adore*:2.4 adorer:2.2 aime:1.5 aimons:1.5 aimer:1.2 apprecie*:1.6 plait:1.6
plaisir:1.7 merci:1.2 remerci*:1.4 bravo:2.2 felicit*:2 chapeau:1.5 qualite:0 de_qualite:1.2
qualite_superieure:1.8 haute_qualite:1.8 serieu*:1.5 professionnel*:1.5 aimable*:1.8 gentil*:1.7
courtois*:1.6 souriant*:1.7 chaleureu*:1.8 accueillant*:1.7 disponible*:1 reactif*:1.8
reactivite:1.6 competent*:1.6 attentionn*:1.7 soign*:1.4 delicieu*:2.4 savoureu*:2.2 succulent*:2.4
gouteu*:1.8 fraiche*:0.6 frais_de:0 frais_et:0.6 copieu*:1.2 genereu*:1.5 raisonnable*:1
abordable*:1.3 avantageu*:1.4 economique*:0.8 ideal*:1.8 utile*:1 facile*:1.2 facilement:1
simple:0.6 clair*:0.6 beaucoup_aime:2 joie:1.6 bluff*:2 incroyable*:1.8 top_qualite:2.2 extra:2
cool:1.4 chouette:1.6 mignon*:1.4 elegant*:1.5 doux:1 douce:1 agreablement:1.6 tranquille:0.6
calme:0.6 propre*:1.2 cosy:1.3 harmonieu*:1.4 charmant*:1.8 convivial*:1.6 fidele*:1.2 reussi*:1.6
valide:0.3 nickel_chrome:2 efficacement:1.5 irreprochable*:2.4 securis*:0.8 rassur*:1.2
ponctuel*:1.4 arrange:0.6 resolu*:1.2 regle:0.6 surpris:0.3 agreablement_surpris:2 correct*:0.7
ok:0.6 bien_recu:1.4 volontiers:1 adorable*:2 raffine*:1.8 varie:0.8 variee*:0.8 varies:0.8
tuerie:2.2 bonheur:2 serviable*:2 typique*:0.8 attentif*:1.6 attentive*:1.6 incontournable*:2
magique*:2 n_hesitez_pas:1.6 sans_hesiter:1.6 sans_hesitation:1.8 a_refaire:1.5 reviendrons:1.8
reviendrai:1.8 reviendra:1.4 retournerons:1.6 y_retourner:1.2 vivement:1 meilleur:1.6
meilleure*:1.6 meilleurs:1.6 fondant*:1.4 tendre:0.8 unique*:0.8 classe:0.8
rapport_qualite_prix:0.4 qualite_prix:0.4 bon_rapport:1.6 tres_bon_rapport:2 excellent_rapport:2.4
fait_le_job:1 fait_son_travail:1 fait_l_affaire:1 repond_a_mes_attentes:1.6 a_la_hauteur:1.6
optimal*:1 adequat*:1 explicite*:0.8 precis:0.8 precise:0.8 interessant*:1.2 competitif*:1.2
imbattable*:1.8 attractif*:1.3 offert*:0.6 gratuit*:0.6 ecolo*:0.6 poli:1.2 polie*:1.2 polis:1.2
regal*:2.2 delice*:2.2 hors_pair:2 au_top:2.2 au_rendez-vous:1 dans_les_temps:1 dans_les_delais:1
en_temps_et_en_heure:1.4 a_temps:0.8 temps_record:1.8 recommandable*:1.8 satisfaisant*:1.4
fonctionnel*:1 reconnaissant*:1.4 top_du_top:2.6 pas_mal:1.3 sans_probleme:1.2 sans_problemes:1.2
aucun_probleme:1.2 aucun_souci:1.2 sans_souci:1.1 pas_de_probleme:0.9 pas_de_souci:0.9
rien_a_dire:1.6 rien_a_redire:1.8 comme_prevu:0.8 comme_d_habitude:0.6 ravie:2.3 fan:1.6 love:2
great:2 good:1.5 perfect:2.5 recommande:1.8 5_etoiles:2 bien_que:0 si_bien_que:0
passionn*:2 captivant*:2
ne_changez_rien:1.8 changez_rien:1.6 pas_a_me_plaindre:1.4 peut_pas_faire_mieux:2
nullement:0 aucunement:0 vaut_la_peine:1.4 vaut_le_detour:1.6 convaincu:1.2
convaincue:1.2 convaincus:1.2 convaincues:1.2 convaincant*:1.4 appreciable*:1.4 fait_le_taf:1
fait_le_boulot:1 fait_le_travail:1 eloge*:2 ni_bon_ni_mauvais:0 ni_bien_ni_mal:0
"""

_NEGATIVE = """
fendu*:-1.8 fissur*:-1.8 deterior*:-1.8 troue*:-1.4 chiant*:-2 nulle_part:-0.5 decousu*:-1.6
deteint*:-1.6 slow:-1.4 damaged:-2 never_received:-2.8 not_received:-2.4 rude:-2 useless:-2.2
wrong:-1.4 refund:-0.2 missing:-1.6 crap:-2.6 waste:-2 decharg*:-0.8 expire*:-1.2 perime*:-2
charlatan*:-2.6 provisoire*:-0.6 inaccept*:-2.6 innaccept*:-2.6 plie:-1.2 pliee*:-1.2 plies:-1.2
reste_a_prouver:-1.2 a_prouver:-0.8 reste_a_voir:-0.6 a_voir_avec_le_temps:-0.3 transparent*:-0.2
aucune_info:-1.6 aucune_information:-1.6 aucun_suivi:-1.6 aucun_effet:-2 aucun_resultat:-2
eleve:-0.6 elevee:-0.6 eleves:-0.6 elevees:-0.6 rien_d_extraordinaire:-1 rien_de_special:-0.8
rien_de_formidable:-1 rien_de_bien:-0.8 rien_de_terrible:-1 rien_d_exceptionnel:-0.8 a_redire:-1.2
rien_a_voir:-1 dessech*:-1.4 congele*:-0.8 industriel*:-0.8 surgele*:-0.6 tiede*:-1.2 mauvais*:-2
mauvaise*:-2 mal:-1.4 nul:-2.6 nulle*:-2.6 nuls:-2.6 null:-2.4 horrible*:-2.8 affreu*:-2.6
catastroph*:-2.8 lamentable*:-2.7 pitoyable*:-2.6 deplorable*:-2.6 minable*:-2.5 mediocre*:-2.1
decevant*:-2.2 decu:-2.2 decue*:-2.2 decus:-2.2 deception*:-2.3 decoit:-2 inadmissible*:-2.8
inacceptable*:-2.8 honteu*:-2.7 honte:-2.5 scandal*:-2.8 arnaque*:-3 escroc*:-3 voleur*:-3 vol:-1.5
vole:-1.2 fraude*:-2.8 mensonge*:-2.4 menteur*:-2.6 fuir:-2 fuyez:-3 eviter:-1.8 evitez:-2.8
a_eviter:-2.8 jamais_plus:-2 plus_jamais:-2.6 probleme*:-1.4 souci*:-1.3 defaut*:-1.6
defectueu*:-2.3 casse*:-2 cassee*:-2 brise*:-1.8 abime*:-2 endommag*:-2.1 dechir*:-1.7 tache*:-1
raye*:-1.4 panne*:-2 hs:-2.2 retard*:-1.8 lent:-1.5 lente*:-1.5 lents:-1.5 lenteur*:-1.7
attente:-0.6 attendre:-0.5 attends:-0.8 perdu*:-1.6 introuvable*:-1.3 injoignable*:-2.4
incompetent*:-2.4 incompetence:-2.4 impoli*:-2.2 desagreable*:-2.2 agressi*:-2.2 mepris*:-2.3
arrogant*:-2.2 rude:-1.6 froid*:-0.8 sale:-2 salet*:-2.2 degoutant*:-2.6 degout*:-2.4 immonde*:-2.8
infect*:-2.6 fade*:-1.6 insipide*:-1.9 sec:-0.6 brule*:-1.6 trop_cuit:-1.5 surcuit*:-1.6 cher:-1
chers:-1 chere:-1 cheres:-1 excessi*:-1.6 exorbitant*:-2.3 hors_de_prix:-2.3 onereu*:-1.4 cout:-0.3
fragile*:-1.2 bruyant*:-1.4 bruit:-0.8 inutile*:-1.8 inutilisable*:-2.4 impossible*:-1.6
difficile*:-1 complique*:-1.3 galere*:-2 bug:-1.7 bugs:-1.7 bugu*:-1.7 bugg*:-1.7
beug*:-1.7 bogue*:-1.7
plante:-1.2 erreur*:-1.5 faute*:-1.2
annul*:-1 manquant*:-1.6 manque:-1.2 manquait:-1.4 absence:-0.8 absent*:-1 rupture:-0.8 rembourse:0
remboursement:0 plainte*:-1.8 reclamation*:-1 litige*:-1.8 colere:-2.2 enerv*:-2 furieu*:-2.6
regret*:-1.6 dommage:-1.2 malheureusement:-1.3 helas:-1.3 pire:-2.5 pires:-2.5 grave:-1 graves:-1
inquiet*:-1.3 peur:-1.4 danger*:-2.2 toxique*:-2.4 douteu*:-1.6 louche:-1.8 suspect*:-1.6 faux:-1.4
fausse*:-1.4 trompe*:-2 tromper*:-2 trompeu*:-2.2 mensonger*:-2.4 mecontent*:-2.2 insatisf*:-2
frustr*:-2 agac*:-1.6 insupportable*:-2.5 penible*:-1.8 desastr*:-2.6 desastre*:-2.7
cauchemar*:-2.7 catastrophe*:-2.8 ridicule*:-2.2 aberrant*:-2.4 inadmissibl*:-2.8 lamentabl*:-2.7
bof:-1 moyen:-0.7 moyenne:-0.7 passable:-0.6 mouais:-0.9 sans_plus:-1.2 limite:-0.8 dechet*:-1.5
poubelle:-2 pourri*:-2.6 merde*:-2.8 merdique*:-2.8 naze*:-2.2 pourave:-2.4 foutage:-2.6 foutu*:-2
dingue:-0.3 inexistant*:-2.2 ignore*:-1.2 ignorer:-1 aucune_reponse:-2.4 silence:-0.8 relance*:-0.8
toujours_rien:-2.2 toujours_pas:-1.6 encore_rien:-2 jamais_recu:-2.8 jamais_livre:-2.8
pas_recu:-2.2 non_recu:-2.2 non_livre:-2.2 non_conforme*:-2 rouille*:-1.8 moisi*:-2.4 perime*:-2.2
odeur:-0.4 puant*:-2.4 fuite*:-1.6 ecrase*:-1.8 enfonce*:-1.4 dechire*:-1.7 deforme*:-1.6
decolle*:-1.5 delave*:-1.5 bouloch*:-1.5 rétréci*:-1.5 retreci*:-1.5 petit:-0.2 minuscule*:-1
grand:0 trop_petit:-1.4 trop_grand:-1.4 trop_cher:-1.8 bloque*:-1.4 coince*:-1.2 force:-0.3
oblige*:-0.9 harcel*:-2.2 spam*:-1.6 preleve*:-0.5 debite*:-0.6 facture:-0.2 bad:-1.8 worst:-2.8
terrible:-2.4 awful:-2.6 disappointed:-2.2 broken:-2 late:-1.4 scam:-3 never:-0.8 poor:-1.6
pas_terrible:-1.6 pas_donne:-1.2 pas_donnee:-1.2 pas_donnes:-1.2 pas_donnees:-1.2
moche*:-1.8 deconseill*:-2.2 zero:-1 jeter:-1.2 jete:-1.2 jetee*:-1.2 perte:-1.5
bizarre*:-0.8 a_peine:-0.6 laisse_a_desirer:-2 laissent_a_desirer:-2 a_revoir:-1.2 vide:-0.6
sert_a_rien:-2 servent_a_rien:-2 arrete:-0.8 mitige*:-0.5 peut_mieux_faire:-1.2
m_attendais_a_mieux:-1.8 attendais_mieux:-1.6 aurait_pu:-0.6 sans_interet:-1.8 perte_de_temps:-2.4
perte_d_argent:-2.4 argent_jete:-2.4 a_fuir:-2.8 deconseille:-2.2 long:-0.4 longue:-0.4
trop_long:-1.6 trop_longue:-1.6 tres_long:-1.4 tres_longue:-1.4 prohibitif*:-2 tatillon*:-1.5
chaotique*:-2 dubitati*:-1.2 antediluvien*:-1.5 defaillant*:-2 erron*:-1.3 epuise*:-0.8 tarde*:-1.2
bemol:-0.8 hic:-0.8 petit_bemol:-0.6 galere:-2 galerer:-2 rate:-1 rater:-1 delai_depasse:-1.8
inexact*:-1.2 incomplet*:-1.6 laid*:-1.6 triste*:-1.4 pleure*:-1 mensong*:-2.4 plaint*:-1.6
serait_bien_que:-0.8 serait_bien_de:-0.8 serait_bien_d:-0.8 serait_bon_que:-0.8 serait_bon_de:-0.8
serait_mieux_que:-0.8 serait_mieux_de:-0.8 aurais_aime:-0.8 aurions_aime:-0.8 aurais_prefere:-0.8
aurions_prefere:-0.8 aurais_voulu:-0.6 aurais_souhaite:-0.6
inefficace*:-2 malhonnete*:-2.4 bacle*:-2 irrespectueu*:-2.2 degueulasse*:-2.6 pas_ouf:-1.4
mieux_avant:-1.6 moins_bien:-1.4 arrive_ouvert:-1.6 arrivee_ouverte:-1.6 arrives_ouverts:-1.6
arrivees_ouvertes:-1.6 recu_ouvert:-1.6 recue_ouverte:-1.6 recus_ouverts:-1.6
vaut_pas_le_coup:-1.8 vaut_pas_la_peine:-1.6 vaut_pas_le_prix:-1.8 vaut_vraiment_pas_le_coup:-2.2
vaut_vraiment_pas_le_prix:-2.2 valait_pas_le_coup:-1.8 valent_pas_le_prix:-1.8 vaut_rien:-2
n_importe_quoi:-1.8 vaut_pas_la_chandelle:-1.8 ni_fait_ni_a_faire:-2.4 abus*:-1.8
a_ameliorer:-1 faudrait_ameliorer:-1 faut_ameliorer:-1 devriez_ameliorer:-1 refus:-1.2
refusee:-1.2 refusees:-1.2 ete_refuse:-1.4 a_refuse:-1.4 paiement_refuse:-1.4 code_refuse:-1.2
remboursement_refuse:-1.6 retour_refuse:-1.4 echange_refuse:-1.4 aucun_interet:-1.8
aucune_utilite:-1.8 aucun_respect:-2 aucun_serieux:-2 aucun_professionnalisme:-2.2 pas_pro:-1.6
aucune_excuse:-1.4 aucune_explication:-1.4 aucun_geste_commercial:-1.6 pas_si_bien_que:-1
pas_aussi_bien_que:-1
"""

# Words that are neutral alone but a complaint when negated: "jamais reçu", "ne fonctionne
# plus", "pas répondu", "toujours pas remboursé" (value used under negation).
NEGATED_EVENTS: dict[str, float] = {
    "recu": -2.0,
    "recus": -2.0,
    "recue": -2.0,
    "recues": -2.0,
    "recevoir": -1.8,
    "recoit": -1.6,
    "arrive": -1.8,
    "arrivee": -1.8,
    "arrives": -1.8,
    "arrivees": -1.8,
    "livre": -1.8,
    "livree": -1.8,
    "livres": -1.8,
    "livrees": -1.8,
    "fonctionne": -2.2,
    "fonctionnent": -2.2,
    "fonctionner": -2.0,
    "marche": -2.0,
    "marchent": -2.0,
    "repondu": -2.0,
    "repond": -2.0,
    "repondent": -2.0,
    "reponse": -2.0,
    "rembourse": -2.0,
    "remboursee": -2.0,
    "rembourses": -2.0,
    "remboursement": -1.6,
    "tient": -1.6,
    "tiennent": -1.6,
    "correspond": -1.8,
    "correspondent": -1.8,
    "conforme": -2.0,
    "contact": -1.2,
    "nouvelles": -1.5,
    "suivi": -1.0,
    "traite": -1.4,
    "traitee": -1.4,
    "resolu": -1.6,
    "regle": -1.4,
    "envoye": -1.6,
    "expedie": -1.6,
    "expediee": -1.6,
    "charge": -1.2,
    "convient": -1.8,
    "comprends": -1.2,
    "compris": -1.0,
    "conviennent": -1.8,
    "fiable": -1.8,
    "livraison": -1.6,
    "colis": -1.4,
    "info": -1.4,
    "infos": -1.4,
    "information": -1.4,
    "informations": -1.4,
    "resultat": -1.4,
    "effet": -1.4,
    "nouvelle": -1.4,
    "trace": -1.2,
    "retour": -1.0,
    "allume": -1.6,
    "demarre": -1.6,
    "rappele": -1.6,
    "rappel": -1.2,
}

# Polarity shifters on the next word.
INTENSIFIERS: dict[str, float] = {
    "tres": 1.4,
    "vraiment": 1.35,
    "trop": 1.3,
    "super": 1.3,
    "hyper": 1.45,
    "extremement": 1.6,
    "tellement": 1.4,
    "particulierement": 1.3,
    "absolument": 1.5,
    "totalement": 1.5,
    "completement": 1.5,
    "carrement": 1.4,
    "franchement": 1.2,
    "vachement": 1.4,
    "grave": 1.2,
    "si": 1.2,
    "aussi": 1.1,
    "tout": 1.1,
    "plutot": 0.8,
    "assez": 0.8,
    "moins": -0.6,
    "un_peu": 0.6,
    "peu": -0.7,
    "vraiment_tres": 1.6,
    "bien": 1.15,
    "ultra": 1.5,
    "archi": 1.5,
    "mega": 1.4,
    "tjrs": 1.0,
}

EMOJI_VALENCE: dict[str, float] = {
    "😀": 2,
    "😃": 2,
    "😄": 2,
    "😁": 2,
    "😆": 1.8,
    "😊": 2,
    "🙂": 1.2,
    "😉": 1.2,
    "😍": 2.6,
    "🥰": 2.6,
    "😘": 2,
    "🤩": 2.6,
    "😎": 1.6,
    "👍": 1.8,
    "👌": 1.8,
    "👏": 2,
    "🙏": 1.2,
    "💪": 1.5,
    "❤": 2.4,
    "♥": 2.2,
    "💕": 2.2,
    "💖": 2.3,
    "💯": 2,
    "⭐": 1.4,
    "🌟": 1.6,
    "✨": 1.2,
    "🎉": 1.8,
    "🥳": 2,
    "😂": 0.8,
    "🤣": 0.8,
    "😅": 0.2,
    "🙃": -0.3,
    "😐": -0.4,
    "😑": -0.8,
    "🤔": -0.4,
    "😕": -1.4,
    "🙁": -1.6,
    "☹": -1.8,
    "😞": -1.9,
    "😔": -1.7,
    "😟": -1.6,
    "😢": -1.9,
    "😭": -2.1,
    "😩": -2,
    "😫": -2,
    "😤": -2.2,
    "😠": -2.4,
    "😡": -2.7,
    "🤬": -3,
    "👎": -2.2,
    "💩": -2.5,
    "🤮": -2.7,
    "🤢": -2.4,
    "😱": -1.8,
    "😒": -1.6,
    "🙄": -1.6,
    "😬": -1,
    "💔": -2.2,
    "⚠": -1,
    "❌": -1.6,
    "✅": 1.2,
    "🤦": -1.8,
    "😖": -1.9,
    "😣": -1.7,
}


def _parse(block: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in block.split():
        key, _, value = item.rpartition(":")
        out[key.replace("_", " ")] = float(value)
    return out


def build_lexicon() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(single words, prefixes without the "*", multi-word phrases)."""
    words: dict[str, float] = {}
    prefixes: dict[str, float] = {}
    phrases: dict[str, float] = {}
    for key, value in {**_parse(_POSITIVE), **_parse(_NEGATIVE)}.items():
        if " " in key:
            phrases[key] = value
        elif key.endswith("*"):
            prefixes[key[:-1]] = value
        else:
            words[key] = value
    return words, prefixes, phrases
