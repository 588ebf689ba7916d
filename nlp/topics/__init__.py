"""Topic discovery over French feedback: BERTopic over the encoder's embeddings, or a fast
path (static token embeddings distilled from the encoder + mini-batch k-means); French
keywords with accents, representative verbatims, emerging flags, stable ids, daily sizes.

A pure library: models and taxonomies are passed in, configs are dataclasses, nothing is
global. BERTopic, UMAP and torch are imported only by the code paths that use them.
"""

from nlp.topics.bertopic_model import BertopicConfig, BertopicTopicModel
from nlp.topics.describe import OUTLIER, DiscoveredTopic, make_label
from nlp.topics.emerging import (
    EmergingConfig,
    ThemeMatch,
    ThemeMatcher,
    lexicon_valence,
    theme_prototypes,
)
from nlp.topics.fast import FastTopicConfig, FastTopicModel
from nlp.topics.stability import MatchConfig, TopicRef, match_topics, member_jaccard
from nlp.topics.static import StaticConfig, StaticEmbedder
from nlp.topics.stopwords import FRENCH_STOP_WORDS
from nlp.topics.trends import sizes_per_day
from nlp.topics.vectorize import FrenchAnalyzer, VectorizerConfig, make_vectorizer

__all__ = [
    "FRENCH_STOP_WORDS",
    "OUTLIER",
    "BertopicConfig",
    "BertopicTopicModel",
    "DiscoveredTopic",
    "EmergingConfig",
    "FastTopicConfig",
    "FastTopicModel",
    "FrenchAnalyzer",
    "MatchConfig",
    "StaticConfig",
    "StaticEmbedder",
    "ThemeMatch",
    "ThemeMatcher",
    "TopicRef",
    "VectorizerConfig",
    "lexicon_valence",
    "make_label",
    "make_vectorizer",
    "match_topics",
    "member_jaccard",
    "sizes_per_day",
    "theme_prototypes",
]
