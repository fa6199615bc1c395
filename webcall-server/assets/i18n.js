// Every user-visible string, in English and Russian.
//
// The language comes from navigator.languages (any "ru*" first wins Russian,
// otherwise English). Markup names its strings with data-i18n (text),
// data-i18n-aria (aria-label), data-i18n-title (title) and
// data-i18n-placeholder; `translatePage` fills them in.

/** Every string by language, then key. */
export const STRINGS = {
  en: {
    page_title: 'webcall: video call by link',
    app_name: 'webcall',
    tagline: 'A private video call for two. Create a link, send it, talk.',
    create_link: 'Create a call link',
    creating: 'Creating…',
    create_failed: 'Could not create a link. Check your connection and try again.',
    create_rate_limited: 'Too many links in a short time. Wait a minute and try again.',
    create_too_many: 'Your network already has many open links. Use one you made, or wait until unused ones lapse (a day).',
    your_link: 'Your call link',
    copy: 'Copy',
    copy_link: 'Copy the link',
    copied: 'Copied',
    copy_manual: 'Press Ctrl+C (⌘C) to copy',
    qr_alt: 'QR code of the call link',
    qr_hint: 'Scan with a phone to join from there.',
    join_call: 'Join the call',
    link_expires: 'The link works until {time}.',
    privacy_note: 'Video and sound go directly between the two of you; the server only introduces you.',
    call_ended: 'You left the call.',
    rejoin: 'Rejoin',
    new_call: 'Start a new call',
    back_home: 'Back to the home page',

    status_connecting: 'Connecting…',
    status_waiting: 'Waiting for the other person to join.',
    status_connected: 'Connected',
    status_reconnecting: 'Connection lost. Reconnecting…',
    status_peer_left: 'The other person left the call.',
    status_peer_reconnecting: 'The other person is reconnecting…',
    status_room_full: 'This call already has two people.',
    status_not_found: 'This link is unknown or has expired.',
    status_media_denied: 'Camera or microphone is not available.',
    status_ended: 'Call ended.',
    status_error: 'Something went wrong.',
    status_replaced: 'You joined this call from another tab or device.',
    status_unsupported: 'This page is out of date. Reload it.',
    status_insecure: 'Camera and microphone need a secure (https) connection.',
    status_negotiation_failed: 'The call could not be set up.',

    share_title: 'Invite the other person',
    share_text: 'Send them this link. The call starts when they open it.',
    peer_left_hint: 'They can come back with the same link.',
    not_found_hint: 'Ask for a new link, or create one yourself.',
    room_full_hint: 'Only two people can be in a call.',
    media_denied_hint: 'Allow access in the browser’s site settings and try again, or join anyway:',
    negotiation_failed_hint: 'The two sides could not agree on how to connect. Reload the page to try again.',
    try_again: 'Try again',
    join_audio_only: 'Join with audio only',
    join_receive_only: 'Join without camera and microphone',

    quality_good: 'Good',
    quality_poor: 'Poor',
    quality_bad: 'Bad',
    quality_label: 'Connection quality: {grade}. Click for details.',
    quality_codec: 'Codec',
    quality_resolution: 'Resolution',
    quality_bitrate: 'Bitrate in / out',
    quality_rtt: 'Round trip',
    quality_loss: 'Packet loss',
    quality_path: 'Path',
    path_direct: 'direct',
    path_relayed: 'relayed (TURN)',
    summary_duration: 'Call time: {time}',
    summary_path: 'Connection: {path}',
    summary_quality: 'Quality: {grade} {percent} % of the time',

    mic_off: 'Turn microphone off',
    mic_on: 'Turn microphone on',
    cam_off: 'Turn camera off',
    cam_on: 'Turn camera on',
    hang_up: 'Hang up',
    unmute: 'Tap to turn on sound',
    you: 'You',
    remote_video: 'The other person’s video',
    local_video: 'Your video',
    no_camera: 'Camera off',
    remote_no_camera: 'No camera',
    controls: 'Call controls',

    chat: 'Chat',
    chat_open: 'Open the chat',
    screen_start: 'Share screen',
    screen_stop: 'Stop sharing',
    screen_you_share: 'You are sharing your screen',
    screen_remote_sharing: 'The other person is sharing their screen',
    remote_screen: 'The other person’s screen',
    chat_close: 'Close the chat',
    chat_input: 'Message',
    chat_placeholder: 'Write a message…',
    chat_send: 'Send',
    chat_empty: 'Messages go straight to the other person and are not stored anywhere.',
    chat_peer: 'They',
    chat_waiting: 'Waiting for the connection',
    chat_unread: 'Unread messages: {count}',
    chat_too_long: 'Too long: {count} characters of {max}.',
    chat_outbox_full: 'Not sent: {max} messages are already waiting for the connection.',
    verification_code: 'Verification code:',
    verification_hint: 'Read this code to each other. If you both see the same one, nobody in between (not even the server) can see or hear the call: it is made from both sides’ encryption keys.',


    status_prejoin: 'Ready to join',
    prejoin_title: 'Check your camera and microphone',
    prejoin_nobody: 'Nobody is here yet.',
    prejoin_one: '1 person is waiting.',
    prejoin_many: '{count} people are here.',
    prejoin_full: 'The room is full.',
    join_now: 'Join',
    mic_level: 'Microphone level',
    camera: 'Camera',
    microphone: 'Microphone',
    speaker: 'Speaker',
    devices: 'Devices',
    settings_open: 'Choose camera, microphone and speaker',
    settings_close: 'Close the device settings',
    camera_failed: 'That camera could not be started. The previous one stays on.',
    microphone_failed: 'That microphone could not be started. The previous one stays on.',
  },
  ru: {
    page_title: 'webcall: видеозвонок по ссылке',
    app_name: 'webcall',
    tagline: 'Личный видеозвонок на двоих. Создайте ссылку, отправьте её и говорите.',
    create_link: 'Создать ссылку на звонок',
    creating: 'Создаём…',
    create_failed: 'Не удалось создать ссылку. Проверьте подключение и попробуйте ещё раз.',
    create_rate_limited: 'Слишком много ссылок за короткое время. Подождите минуту и попробуйте снова.',
    create_too_many: 'Из вашей сети уже создано много ссылок. Используйте одну из них или подождите, пока неиспользованные истекут (сутки).',
    your_link: 'Ваша ссылка на звонок',
    copy: 'Копировать',
    copy_link: 'Скопировать ссылку',
    copied: 'Скопировано',
    copy_manual: 'Нажмите Ctrl+C (⌘C), чтобы скопировать',
    qr_alt: 'QR-код ссылки на звонок',
    qr_hint: 'Отсканируйте телефоном, чтобы войти с него.',
    join_call: 'Войти в звонок',
    link_expires: 'Ссылка действует до {time}.',
    privacy_note: 'Видео и звук идут напрямую между вами; сервер только знакомит собеседников.',
    call_ended: 'Вы вышли из звонка.',
    rejoin: 'Вернуться в звонок',
    new_call: 'Начать новый звонок',
    back_home: 'На главную',

    status_connecting: 'Подключение…',
    status_waiting: 'Ждём собеседника.',
    status_connected: 'Соединено',
    status_reconnecting: 'Связь потеряна. Переподключаемся…',
    status_peer_left: 'Собеседник вышел из звонка.',
    status_peer_reconnecting: 'Собеседник переподключается…',
    status_room_full: 'В этом звонке уже два человека.',
    status_not_found: 'Ссылка неизвестна или устарела.',
    status_media_denied: 'Камера или микрофон недоступны.',
    status_ended: 'Звонок завершён.',
    status_error: 'Что-то пошло не так.',
    status_replaced: 'Вы вошли в этот звонок из другой вкладки или с другого устройства.',
    status_unsupported: 'Страница устарела. Перезагрузите её.',
    status_insecure: 'Для камеры и микрофона нужно защищённое (https) соединение.',
    status_negotiation_failed: 'Не удалось установить связь.',

    share_title: 'Пригласите собеседника',
    share_text: 'Отправьте ему эту ссылку. Звонок начнётся, когда он её откроет.',
    peer_left_hint: 'Он может вернуться по той же ссылке.',
    not_found_hint: 'Попросите новую ссылку или создайте её сами.',
    room_full_hint: 'В звонке могут быть только два человека.',
    media_denied_hint: 'Разрешите доступ в настройках сайта и попробуйте снова или войдите без них:',
    negotiation_failed_hint: 'Стороны не смогли договориться о соединении. Перезагрузите страницу, чтобы попробовать снова.',
    try_again: 'Попробовать снова',
    join_audio_only: 'Войти только со звуком',
    join_receive_only: 'Войти без камеры и микрофона',

    quality_good: 'Хорошее',
    quality_poor: 'Слабое',
    quality_bad: 'Плохое',
    quality_label: 'Качество связи: {grade}. Нажмите, чтобы увидеть подробности.',
    quality_codec: 'Кодек',
    quality_resolution: 'Разрешение',
    quality_bitrate: 'Битрейт входящий / исходящий',
    quality_rtt: 'Задержка туда и обратно',
    quality_loss: 'Потери пакетов',
    quality_path: 'Путь',
    path_direct: 'напрямую',
    path_relayed: 'через ретранслятор (TURN)',
    summary_duration: 'Длительность: {time}',
    summary_path: 'Соединение: {path}',
    summary_quality: 'Качество: {grade} — {percent} % времени',

    mic_off: 'Выключить микрофон',
    mic_on: 'Включить микрофон',
    cam_off: 'Выключить камеру',
    cam_on: 'Включить камеру',
    hang_up: 'Завершить звонок',
    unmute: 'Нажмите, чтобы включить звук',
    you: 'Вы',
    remote_video: 'Видео собеседника',
    local_video: 'Ваше видео',
    no_camera: 'Камера выключена',
    remote_no_camera: 'Нет камеры',
    controls: 'Управление звонком',

    chat: 'Чат',
    chat_open: 'Открыть чат',
    screen_start: 'Показать экран',
    screen_stop: 'Остановить показ',
    screen_you_share: 'Вы показываете свой экран',
    screen_remote_sharing: 'Собеседник показывает экран',
    remote_screen: 'Экран собеседника',
    chat_close: 'Закрыть чат',
    chat_input: 'Сообщение',
    chat_placeholder: 'Напишите сообщение…',
    chat_send: 'Отправить',
    chat_empty: 'Сообщения идут прямо собеседнику и нигде не хранятся.',
    chat_peer: 'Собеседник',
    chat_waiting: 'Ждёт соединения',
    chat_unread: 'Непрочитанных сообщений: {count}',
    chat_too_long: 'Слишком длинное сообщение: символов — {count}, можно не больше {max}.',
    chat_outbox_full: 'Не отправлено: уже {max} сообщений ждут соединения.',
    verification_code: 'Код проверки:',
    verification_hint: 'Прочитайте этот код друг другу. Если у обоих он одинаковый, никто посередине (даже сервер) не видит и не слышит звонок: код вычислен из ключей шифрования обеих сторон.',

    status_prejoin: 'Можно присоединиться',
    prejoin_title: 'Проверьте камеру и микрофон',
    prejoin_nobody: 'Здесь пока никого нет.',
    prejoin_one: 'Ждёт 1 человек.',
    prejoin_many: 'Здесь уже {count} чел.',
    prejoin_full: 'Комната заполнена.',
    join_now: 'Присоединиться',
    mic_level: 'Уровень микрофона',
    camera: 'Камера',
    microphone: 'Микрофон',
    speaker: 'Динамик',
    devices: 'Устройства',
    settings_open: 'Выбрать камеру, микрофон и динамик',
    settings_close: 'Закрыть настройки устройств',
    camera_failed: 'Не удалось включить эту камеру. Остаётся прежняя.',
    microphone_failed: 'Не удалось включить этот микрофон. Остаётся прежний.',
  },
};

/** Picks "ru" for any Russian preference listed first among ru/en, otherwise "en". */
export function chooseLanguage(languages) {
  for (const tag of languages || []) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith('ru')) return 'ru';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

/** The page's language: "en" or "ru". */
export const lang = chooseLanguage(
  typeof navigator === 'undefined' // under node, in the unit tests
    ? []
    : navigator.languages && navigator.languages.length
      ? navigator.languages
      : [navigator.language],
);

/** The translation of `key`, with `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  const table = STRINGS[lang] || STRINGS.en;
  const text = table[key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** Sets <html lang>, the title and every data-i18n* attribute under `root`. */
export function translatePage(root = document) {
  document.documentElement.lang = lang;
  document.title = t('page_title');
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll('[data-i18n-alt]')) el.alt = t(el.dataset.i18nAlt);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}
