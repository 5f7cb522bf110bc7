SELECT
    node,
    argMax(subversion, observed_at_us) AS subversion,
    argMax(version, observed_at_us) AS version,
    argMax(blocks, observed_at_us) AS height,
    argMax(tip_time, observed_at_us) AS tip_time,
    argMax(mempool_count, observed_at_us) AS mempool_count,
    argMax(peers_in, observed_at_us) AS peers_in,
    argMax(peers_out, observed_at_us) AS peers_out,
    argMax(initial_block_download, observed_at_us) AS initial_block_download,
    max(observed_at_us) AS last_heard_us
FROM node_status FINAL
GROUP BY node
ORDER BY node
