-- A trigram index of users.search_text, so that a search by part of a name
-- or email finds its few matches among a million users without reading
-- them all. Contentless (the text stays only in users) and keyed by the
-- users row's rowid, kept in step by the triggers below (VACUUM and the
-- backup's VACUUM INTO keep the rowids of a table with indexes). The listing still
-- applies its LIKE to users.search_text, so the index can only narrow the
-- rows read, never add a wrong one. Case-sensitive because search_text and
-- the query are both lower-cased by the application already.
CREATE VIRTUAL TABLE users_search USING fts5(
    search_text,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO users_search (rowid, search_text) SELECT rowid, search_text FROM users;

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF search_text ON users BEGIN
    DELETE FROM users_search WHERE rowid = old.rowid;
    INSERT INTO users_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    DELETE FROM users_search WHERE rowid = old.rowid;
END;
