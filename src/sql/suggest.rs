//! "Did you mean …?" for misspelled keywords, properties, columns and (later) object names.

/// Every keyword of the statement language, reserved or not.
pub const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "AS",
    "BACKUP",
    "BROKER",
    "CANCEL",
    "CATALOG",
    "CATALOGS",
    "CREATE",
    "DATABASE",
    "DRILL",
    "DROP",
    "EXTERNAL",
    "FOR",
    "FORCE",
    "FROM",
    "FUNCTION",
    "FUNCTIONS",
    "IN",
    "LIKE",
    "LOCATION",
    "MATERIALIZED",
    "ON",
    "ONLY",
    "PARTITION",
    "PARTITIONS",
    "PAUSE",
    "PROPERTIES",
    "READ",
    "RECURRING",
    "REPOSITORIES",
    "REPOSITORY",
    "RESTORE",
    "RESUME",
    "RETENTION",
    "SCHEDULE",
    "SCHEDULES",
    "SHOW",
    "SNAPSHOT",
    "TABLE",
    "TABLES",
    "TIMESTAMP",
    "TO",
    "VIEW",
    "VIEWS",
    "WHERE",
    "WITH",
];

/// The candidate closest to `word` (ignoring case), if it is close enough to be a likely typo:
/// one edit for words of three or four letters, a third of the length for longer ones, and
/// nothing for shorter words (any two-letter word is one edit from too many others).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let budget = match word.chars().count() {
        0..=2 => return None,
        3..=4 => 1,
        n => n / 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != word)
        // A name that differs only in case is the best guess (labels and names are
        // case-sensitive); then the nearest by edits, ignoring case.
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_but_not_unrelated_words() {
        assert_eq!(closest("TABEL", KEYWORDS.iter().copied()), Some("TABLE"));
        assert_eq!(
            closest("databse", KEYWORDS.iter().copied()),
            Some("DATABASE")
        );
        assert_eq!(closest("timout", ["type", "timeout"]), Some("timeout"));
        assert_eq!(closest("MANY_5", ["many_1", "many_5"]), Some("many_5"));
        assert_eq!(closest("sr_member", KEYWORDS.iter().copied()), None);
        assert_eq!(closest("TABLE", KEYWORDS.iter().copied()), Some("TABLES"));
        assert_eq!(
            closest("s", ["AS"]),
            None,
            "one-letter names are not typos of keywords"
        );
        assert_eq!(closest("ab", ["ac"]), None);
        assert_eq!(closest("Stat", ["State", "Status"]), Some("State"));
    }
}
