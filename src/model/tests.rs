use super::*;

/// Every text doscale writes as an outcome or a stage (src/apply.rs), with what it reads as.
#[test]
fn every_outcome_text_reads_as_its_variant_and_writes_back_the_same() {
    use ActionOutcome as A;
    use DropletOutcome as D;
    let actions = [
        ("pending", A::Pending),
        ("done", A::Done),
        ("partial", A::Partial),
        ("failed", A::Failed),
        (
            "cancelled: hook /bin/false: exit status 1",
            A::Cancelled("hook /bin/false: exit status 1".into()),
        ),
    ];
    let droplets = [
        ("healthy", D::Healthy),
        ("destroyed", D::Destroyed),
        ("already gone", D::AlreadyGone),
        ("unhealthy: 3 tries: port 80: connection refused", D::Unhealthy("3 tries: port 80: connection refused".into())),
        ("failed: 422 unprocessable_entity: bad size", D::Failed("422 unprocessable_entity: bad size".into())),
        ("failed: never became active", D::Failed("never became active".into())),
        ("failed: the droplet disappeared", D::Failed("the droplet disappeared".into())),
        (
            "failed: the droplet disappeared before turning active (create action errored?)",
            D::Failed("the droplet disappeared before turning active (create action errored?)".into()),
        ),
        (
            "not created: not listed in 3 listings over 1m (the run was interrupted before the request, or it failed)",
            D::NotCreated("not listed in 3 listings over 1m (the run was interrupted before the request, or it failed)".into()),
        ),
        // Written before the consistency window (kept in old files).
        (
            "not created: the run was interrupted before the request, or it failed",
            D::NotCreated("the run was interrupted before the request, or it failed".into()),
        ),
        ("not destroyed: droplet 7 is protected", D::NotDestroyed("droplet 7 is protected".into())),
        ("cancelled: hook refused", D::Cancelled("hook refused".into())),
    ];
    let stages = [
        ("intent", Stage::Intent),
        ("requested", Stage::Requested),
        ("unknown", Stage::Unknown),
        ("active", Stage::Active),
        ("healthy", Stage::Healthy),
    ];
    fn round_trip<T>(text: &str, want: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + fmt::Display,
    {
        let json = serde_json::to_string(text).unwrap();
        let read: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&read, want, "{text:?}");
        assert_eq!(serde_json::to_string(&read).unwrap(), json, "{text:?}");
        assert_eq!(read.to_string(), text);
    }
    for (text, want) in &actions {
        round_trip(text, want);
    }
    for (text, want) in &droplets {
        round_trip(text, want);
    }
    for (text, want) in &stages {
        round_trip(text, want);
    }
    // Anything else (an edited file, a later doscale) is kept as it was, escapes included.
    for odd in [
        "",
        "Done",
        "failed:x",
        "unhealthy",
        "cancelled",
        "\"quoted\"\n\u{1b}[31m",
    ] {
        round_trip(odd, &A::Other(odd.into()));
        round_trip(odd, &D::Other(odd.into()));
        round_trip(odd, &Stage::Other(odd.into()));
    }
    assert!(D::Healthy.succeeded() && D::Destroyed.succeeded() && D::AlreadyGone.succeeded());
    assert!(!D::Unhealthy(String::new()).succeeded() && !D::Failed(String::new()).succeeded());
}
