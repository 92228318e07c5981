//! Diagnostic codes: one name for each kind of error srbackup reports, shared by every stage.
//! A problem or an error carries a [`Code`]; miette prints its text (`srbackup::plan::unknown`);
//! the server picks the MySQL error number from the variant, never from the text.

macro_rules! codes {
    ($($variant:ident = $text:literal,)*) => {
        /// Every diagnostic code srbackup reports.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The text miette shows: `srbackup::<stage>::<what>`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    // accounts and privileges
    AccessDenied = "srbackup::access::denied",
    AccessInvalid = "srbackup::access::invalid",
    AccessUnknown = "srbackup::access::unknown",
    AccessExists = "srbackup::access::exists",
    // catalog
    CatalogBusy = "srbackup::catalog::busy",
    CatalogFull = "srbackup::catalog::full",
    CatalogDamaged = "srbackup::catalog::damaged",
    CatalogNewer = "srbackup::catalog::newer",
    CatalogSqlite = "srbackup::catalog::sqlite",
    CatalogIo = "srbackup::catalog::io",
    CatalogSecret = "srbackup::catalog::secret",
    // config
    ConfigInvalid = "srbackup::config::invalid",
    ConfigIo = "srbackup::config::io",
    // dml
    DmlUnsupported = "srbackup::dml::unsupported",
    DmlKeyColumn = "srbackup::dml::key_column",
    DmlNoWhere = "srbackup::dml::no_where",
    DmlCondition = "srbackup::dml::condition",
    // show
    ShowUnsupported = "srbackup::show::unsupported",
    // ddl
    DdlAddPartition = "srbackup::ddl::add_partition",
    DdlAggregate = "srbackup::ddl::aggregate",
    DdlAmbiguousFunction = "srbackup::ddl::ambiguous_function",
    DdlBound = "srbackup::ddl::bound",
    DdlBuckets = "srbackup::ddl::buckets",
    DdlCatalogType = "srbackup::ddl::catalog_type",
    DdlDateTrunc = "srbackup::ddl::date_trunc",
    DdlDuplicatePartition = "srbackup::ddl::duplicate_partition",
    DdlEmptyRange = "srbackup::ddl::empty_range",
    DdlExists = "srbackup::ddl::exists",
    DdlInactive = "srbackup::ddl::inactive",
    DdlKeyOrder = "srbackup::ddl::key_order",
    DdlKeyType = "srbackup::ddl::key_type",
    DdlMvType = "srbackup::ddl::mv_type",
    DdlNotKey = "srbackup::ddl::not_key",
    DdlNotMv = "srbackup::ddl::not_mv",
    DdlNotTable = "srbackup::ddl::not_table",
    DdlOverlap = "srbackup::ddl::overlap",
    DdlPrimaryNull = "srbackup::ddl::primary_null",
    DdlQuery = "srbackup::ddl::query",
    DdlRandom = "srbackup::ddl::random",
    DdlSyncMv = "srbackup::ddl::sync_mv",
    DdlType = "srbackup::ddl::type",
    DdlTypeParameter = "srbackup::ddl::type_parameter",
    DdlUnknownBase = "srbackup::ddl::unknown_base",
    DdlUnknownCatalog = "srbackup::ddl::unknown_catalog",
    DdlUnknownColumn = "srbackup::ddl::unknown_column",
    DdlUnknownFunction = "srbackup::ddl::unknown_function",
    DdlUnknownPartition = "srbackup::ddl::unknown_partition",
    DdlViewColumns = "srbackup::ddl::view_columns",
    DdlWrongKind = "srbackup::ddl::wrong_kind",
    // engine
    EngineData = "srbackup::engine::data",
    EngineInvalid = "srbackup::engine::invalid",
    EngineIo = "srbackup::engine::io",
    EngineNoDatabase = "srbackup::engine::no_database",
    EngineQuery = "srbackup::engine::query",
    EngineUnknownDatabase = "srbackup::engine::unknown_database",
    EngineUnknownObject = "srbackup::engine::unknown_object",
    // internal
    Internal = "srbackup::internal",
    // invalid
    Invalid = "srbackup::invalid",
    // label
    Label = "srbackup::label",
    // restoring
    Restoring = "srbackup::restoring",
    // load
    LoadColumnCount = "srbackup::load::column_count",
    LoadFiles = "srbackup::load::files",
    PathNotAllowed = "srbackup::path::not_allowed",
    LoadFilesProperty = "srbackup::load::files_property",
    LoadMv = "srbackup::load::mv",
    LoadNotNull = "srbackup::load::not_null",
    LoadTooLong = "srbackup::load::too_long",
    LoadUnknownColumn = "srbackup::load::unknown_column",
    LoadValue = "srbackup::load::value",
    LoadView = "srbackup::load::view",
    // on
    OnAliasInBackup = "srbackup::on::alias_in_backup",
    OnAliasOnAll = "srbackup::on::alias_on_all",
    OnCoveredByAll = "srbackup::on::covered_by_all",
    OnDuplicate = "srbackup::on::duplicate",
    OnDuplicateTarget = "srbackup::on::duplicate_target",
    OnOtherDatabase = "srbackup::on::other_database",
    // plan
    PlanEmpty = "srbackup::plan::empty",
    PlanIncremental = "srbackup::plan::incremental",
    PlanLabel = "srbackup::plan::label",
    PlanNoCatalogs = "srbackup::plan::no_catalogs",
    PlanNoDatabase = "srbackup::plan::no_database",
    PlanNoSnapshot = "srbackup::plan::no_snapshot",
    PlanOtherDatabase = "srbackup::plan::other_database",
    PlanOverlap = "srbackup::plan::overlap",
    PlanReadOnly = "srbackup::plan::read_only",
    PlanSchemaDiffers = "srbackup::plan::schema_differs",
    PlanSyncMv = "srbackup::plan::sync_mv",
    PlanTargetKind = "srbackup::plan::target_kind",
    PlanTargetTaken = "srbackup::plan::target_taken",
    PlanUnknown = "srbackup::plan::unknown",
    PlanWrongKind = "srbackup::plan::wrong_kind",
    // properties
    PropertiesDuplicate = "srbackup::properties::duplicate",
    PropertiesTimestamp = "srbackup::properties::timestamp",
    PropertiesUnknown = "srbackup::properties::unknown",
    PropertiesValue = "srbackup::properties::value",
    // the StarRocks target (fe)
    StarRocksAnswer = "srbackup::starrocks::answer",
    StarRocksConnect = "srbackup::starrocks::connect",
    StarRocksIo = "srbackup::starrocks::io",
    StarRocksRefused = "srbackup::starrocks::refused",
    StarRocksUrl = "srbackup::starrocks::url",
    // query
    Query = "srbackup::query",
    // repo
    RepoBusy = "srbackup::repo::busy",
    RepoConflict = "srbackup::repo::conflict",
    RepoCorrupt = "srbackup::repo::corrupt",
    RepoCredentials = "srbackup::repo::credentials",
    RepoEncryption = "srbackup::repo::encryption",
    RepoExists = "srbackup::repo::exists",
    RepoFormat = "srbackup::repo::format",
    RepoIo = "srbackup::repo::io",
    RepoInUse = "srbackup::repo::in_use",
    RepoLeaseLost = "srbackup::repo::lease_lost",
    RepoLocation = "srbackup::repo::location",
    RepoNoPolicy = "srbackup::repo::no_policy",
    RepoNoSnapshot = "srbackup::repo::no_snapshot",
    RepoProperty = "srbackup::repo::property",
    RepoReadOnly = "srbackup::repo::read_only",
    RepoScheme = "srbackup::repo::scheme",
    RepoStorage = "srbackup::repo::storage",
    RepoUnavailable = "srbackup::repo::unavailable",
    RepoUnknown = "srbackup::repo::unknown",
    RepoUnknownProperty = "srbackup::repo::unknown_property",
    // schedule
    ScheduleExists = "srbackup::schedule::exists",
    ScheduleInvalid = "srbackup::schedule::invalid",
    ScheduleUnknown = "srbackup::schedule::unknown",
    // show
    ShowTimestampWithList = "srbackup::show::timestamp_with_list",
    ShowUnknownColumn = "srbackup::show::unknown_column",
    // sql
    Sql = "srbackup::sql",
    // syntax
    Syntax = "srbackup::syntax",
    SyntaxDatabaseTwice = "srbackup::syntax::database_twice",
    SyntaxEndOfInput = "srbackup::syntax::end_of_input",
    SyntaxStatementCount = "srbackup::syntax::statement_count",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Code {
    /// Syntax errors: the statement's text itself does not parse.
    pub fn is_syntax(self) -> bool {
        matches!(
            self,
            Code::Syntax
                | Code::SyntaxDatabaseTwice
                | Code::SyntaxEndOfInput
                | Code::SyntaxStatementCount
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn every_syntax_code_is_one() {
        for c in Code::ALL {
            assert_eq!(
                c.is_syntax(),
                c.as_str().starts_with("srbackup::syntax"),
                "{c}"
            );
        }
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(c.as_str().starts_with("srbackup::"), "{c}");
        }
    }
}
